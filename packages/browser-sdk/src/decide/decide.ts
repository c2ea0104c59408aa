/**
 * Decide client: asks the Worker which content to show in named slots
 * (`GET /v1/decide`). Person ids are sent only when personalization is granted; without
 * it the Worker serves each slot's default. Failures resolve to "no decisions", so a
 * page always falls back to the content it already has.
 */
import { type DecideResponse, PATHS } from '@attune/shared-schema/constants';

/** The decide URL for slots and, when personalization is granted, the person's ids. */
export function decideUrl(endpoint: string, writeKey: string, slots: string[], person: Record<string, unknown> = {}) {
  const query = new URLSearchParams({ slots: `${slots}`, writeKey });
  for (const [key, value] of Object.entries(person)) if (value) query.set(key, `${value}`);
  return `${endpoint}${PATHS.decide}?${query}`;
}

/** Fetches decisions; resolves to `{ personalized: false, decisions: {} }` on any failure. */
export async function fetchDecisions(url: string): Promise<DecideResponse> {
  try {
    const response = await fetch(url, { credentials: 'omit' });
    const body: Partial<DecideResponse> = await response.json();
    if (response.ok && body.decisions && typeof body.decisions === 'object') {
      return { personalized: body.personalized === true, decisions: body.decisions };
    }
  } catch {}
  return { personalized: false, decisions: {} };
}
