/**
 * Decide client: asks the Worker which content to show in named slots
 * (`GET /v1/decide`; the tracker builds the URL, with person ids only when personalization
 * is granted). Failures resolve to "no decisions", so a page always falls back to the
 * content it already has.
 */
import type { DecideResponse } from '@attune/shared-schema/constants';
import { getJson } from '../transport/transport.ts';

const noDecisions = (): DecideResponse => ({ personalized: false, decisions: {} });

/** Fetches decisions; resolves to `{ personalized: false, decisions: {} }` on any failure. */
export const fetchDecisions = (url: string): Promise<DecideResponse> =>
  getJson(url)
    // No body (a non-2xx answer) throws here, which also ends in the fallback.
    .then((body) =>
      (body as DecideResponse).decisions instanceof Object ? (body as DecideResponse) : noDecisions(),
    )
    .catch(noDecisions);
