/**
 * Decide client: asks the Worker which content to show in named slots
 * (`GET /v1/decide`). Person ids are sent only when personalization is granted; without
 * it the Worker serves each slot's default. Failures resolve to "no decisions", so a
 * page always falls back to the content it already has.
 */
import { type DecideResponse, PATHS } from '@attune/shared-schema/constants';

/** The decide URL for slots and, when personalization is granted, the person's ids. */
export function decideUrl(
  endpoint: string,
  writeKey: string,
  slots: string[],
  person?: { anonymousId: string; userId?: string; userIdSignature?: string },
): string {
  const query = new URLSearchParams({ slots: `${slots}`, writeKey });
  if (person) {
    query.set('anonymousId', person.anonymousId);
    if (person.userId) query.set('userId', person.userId);
    if (person.userIdSignature) query.set('userIdSignature', person.userIdSignature);
  }
  return `${endpoint}${PATHS.decide}?${query}`;
}

const noDecisions = (): DecideResponse => ({ personalized: false, decisions: {} });

/** Fetches decisions; resolves to `{ personalized: false, decisions: {} }` on any failure. */
export const fetchDecisions = (url: string): Promise<DecideResponse> =>
  fetch(url, { credentials: 'omit' })
    .then((response) => (response.ok ? response.json() : 0))
    .then((body?: DecideResponse) => (body?.decisions instanceof Object ? body : noDecisions()))
    .catch(noDecisions);
