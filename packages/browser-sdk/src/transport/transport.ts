/**
 * Transport: how a collect body reaches the Worker. Bodies are `text/plain` JSON, a
 * CORS "simple request": no preflight, which could not finish while a page unloads.
 * While the page lives, `fetch` (so the answer can be read and failures retried); when
 * the page is hidden or unloading, `sendBeacon`, falling back to `fetch` with
 * `keepalive` — both limited by the browser to 64 KB in flight per page, which the
 * caller budgets for.
 */

const init = (body: string, keepalive?: boolean): RequestInit => ({
  method: 'POST',
  body,
  keepalive,
  credentials: 'omit',
});

/** Posts a collect body; resolves to the answer, or undefined on a network error. Never rejects. */
export const post = (url: string, body: string): Promise<Response | undefined> =>
  fetch(url, init(body)).catch(() => undefined);

/**
 * Hands a body to the browser to deliver even if the page goes away. False when the
 * browser refused it (over its quota): the events then stay stored for the next page.
 */
export function beacon(url: string, body: string): boolean {
  if (navigator.sendBeacon) return navigator.sendBeacon(url, body);
  fetch(url, init(body, true)).catch(() => {});
  return true;
}
