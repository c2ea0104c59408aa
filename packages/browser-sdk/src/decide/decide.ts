/**
 * Decide client: asks the Worker which content to show in named slots
 * (`GET /v1/decide`; the tracker builds the URL, with person ids only when personalization
 * is granted). Failures resolve to "no decisions", so a page always falls back to the
 * content it already has.
 */
import type { DecideResponse } from '@attune/shared-schema/constants';
import { getJson } from '../transport/transport.ts';

/** Fetches decisions; resolves to `{ personalized: false, decisions: {} }` on any failure. */
export const fetchDecisions = (url: string): Promise<DecideResponse> =>
  // A network or JSON error, no body (a non-2xx answer) and a malformed body all end in the fallback.
  getJson(url).then((body) =>
    (body as DecideResponse | undefined)?.decisions instanceof Object
      ? (body as DecideResponse)
      : { personalized: false, decisions: {} },
  );
