/**
 * Decide client: asks the Worker which content to show in named slots
 * (`GET /v1/decide`). Person ids are sent only when personalization is granted; without
 * it the Worker serves each slot's default. Failures resolve to "no decisions", so a
 * page always falls back to the content it already has.
 */
import { type DecideResponse, PATHS } from '@attune/shared-schema/constants';
import { getJson } from '../transport/transport.ts';

/** The decide URL for slots and, when personalization is granted, the person's ids. */
export function decideUrl(
  endpoint: string,
  writeKey: string,
  slots: string[],
  person?: { anonymousId: string; userId?: string; userIdSignature?: string },
): string {
  // JSON drops the ids that are undefined, so only the ones the person has reach the query.
  const query = JSON.parse(JSON.stringify({ slots: `${slots}`, writeKey, ...person }));
  return `${endpoint}${PATHS.decide}?${new URLSearchParams(query)}`;
}

const noDecisions = (): DecideResponse => ({ personalized: false, decisions: {} });

/** Fetches decisions; resolves to `{ personalized: false, decisions: {} }` on any failure. */
export const fetchDecisions = (url: string): Promise<DecideResponse> =>
  getJson(url)
    // No body (a non-2xx answer) throws here, which also ends in the fallback.
    .then((body) =>
      (body as DecideResponse).decisions instanceof Object ? (body as DecideResponse) : noDecisions(),
    )
    .catch(noDecisions);
