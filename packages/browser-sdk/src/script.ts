/**
 * Script-tag entry (built to dist/attune.js as an IIFE): reads its options from the
 * tag's data attributes, replaces the inline stub at `window.attune` — the only global
 * it defines — and replays the calls the stub queued, in order.
 *
 * Every data attribute maps to the option of the same name: `data-write-key="pk_…"` →
 * writeKey, `data-flush-at="10"` → flushAt (numbers), `data-spa-page-views` → true
 * (present and empty), `data-auto-page-view="false"` → false.
 */
import { type AttuneOptions, createAttune } from './attune.ts';

type StubCall = [method: string, args: unknown[]];
/** What the stub's method names reach: `track`, or `consent.set` one level down. */
type Callable = ((...args: unknown[]) => unknown) & { [key: string]: Callable | undefined };

const w = window as unknown as { attune?: unknown };
// An element with id="attune" is also window.attune (named access): only a tracker already
// made (the tag loaded twice) is left in place; the stub, an element or nothing is replaced.
const stub = w.attune as { q?: StubCall[]; anonymousId?: unknown } | undefined;
if (!stub?.anonymousId) {
  const options: Record<string, unknown> = {};
  // Dataset values are strings, never undefined (DOMStringMap's type says otherwise).
  for (const [key, value] of Object.entries(
    (document.currentScript as HTMLScriptElement).dataset as Record<string, string>,
  )) {
    options[key] =
      // Present and empty turns a switch on, but an empty data-endpoint (a template variable left
      // blank) means none: the page's own origin, not a crash that leaves the stub in place.
      // "true" stays a string: options are only ever tested for truthiness.
      value === '' ? key !== 'endpoint' : value !== 'false' && (/^\d+$/.test(value) ? +value : value);
  }
  // A page cannot hand the tag an onError: what it reports (a bad event name, an event too large,
  // the Worker's reasons for refusing one) goes to the console, where the site's developer looks.
  const attune = createAttune({
    onError: console.warn,
    ...(options as unknown as AttuneOptions),
  });
  w.attune = attune;
  // `track` or `consent.set`: the tracker's methods are closures, called without `this`.
  for (const [method, args] of stub?.q ?? [])
    method
      .split('.')
      .reduce<Callable | undefined>(
        (target, key) => target?.[key],
        attune as unknown as Callable,
      )?.(...args);
}
