/**
 * Transport: how a collect body reaches the Worker, and how the tracker reads the
 * Worker's JSON answers. Bodies are `text/plain` JSON, a CORS "simple request": no
 * preflight, which could not finish while a page unloads. While the page lives, `fetch`
 * (so the answer can be read and failures retried); when the page is hidden or
 * unloading, `sendBeacon`, falling back to `fetch` with `keepalive` — both limited by the
 * browser to 64 KB in flight per page, which the caller budgets for.
 */

// Cookies only to the page's own origin (fetch's default, `same-origin`): in edge-proxy mode
// the first-party collect answers with the `attune_aid` / `attune_consent` cookies the edge
// personalizes pages by; a Worker on another origin never sees or sets one.
// Async: a page's own fetch wrapper (a monitoring agent, an interceptor) that throws instead of
// rejecting must fail this request only, as a network error would, not the tracker's start-up.
const send = async (url: string, body?: string, keepalive?: boolean): Promise<Response> =>
  fetch(url, { method: body && 'POST', body, keepalive });

/** For promises whose failure needs no handling (the events stay queued or stored). */
export const ignore = (): undefined => undefined;

/** Runs `work`; undefined if it throws (a full or blocked localStorage, a site's throwing onError). */
export function safely<T>(work: () => T): T | undefined {
  try {
    return work();
  } catch {}
}

/** Posts a collect body; resolves to the answer, or undefined on a network error. Never rejects. */
export const post = (url: string, body: string): Promise<Response | undefined> =>
  send(url, body).catch(ignore);

/** GETs a JSON answer; undefined when the status is not 2xx, or on a network or JSON error. Never rejects. */
export const getJson = (url: string): Promise<unknown> =>
  send(url)
    .then((response) => (response.ok ? response.json() : undefined))
    .catch(ignore);

/**
 * Hands a body to the browser to deliver even if the page goes away. False when the
 * browser refused it (over its quota): the events then stay stored for the next page.
 */
export function beacon(url: string, body: string): boolean {
  // Browsers without sendBeacon (undefined here) get a keepalive fetch: as good, but blind (true: handed over).
  return navigator.sendBeacon?.(url, body) ?? !!send(url, body, true).catch(ignore);
}
