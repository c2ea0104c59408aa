/**
 * Script-tag entry (built to dist/attune.js as an IIFE): reads its options from the
 * tag's data attributes, replaces the inline stub at `window.attune` — the only global
 * it defines — and replays the calls the stub queued, in order.
 *
 * <script async src=".../attune.js" data-endpoint="https://edge.example.com" data-write-key="pk_…"></script>
 * Optional: data-spa, data-google-consent-mode, data-tcf (presence turns them on);
 * data-auto-page="false", data-clicks="false"; data-flush-at, data-flush-interval (ms).
 */
import { type Attune, type AttuneOptions, createAttune } from './attune.ts';

type StubCall = [method: string, args: unknown[]];
type Callable = (...args: unknown[]) => unknown;

const w = window as unknown as { attune?: { q?: StubCall[] } | Attune };
const stub = w.attune as { q?: StubCall[] } | undefined;
if (!stub || stub.q) {
  const queued = stub?.q ?? [];
  const data = (document.currentScript as HTMLScriptElement | null)?.dataset ?? {};
  const on = (value?: string) => value !== undefined && value !== 'false';
  const options: AttuneOptions = {
    endpoint: data.endpoint ?? '',
    writeKey: data.writeKey ?? '',
    autoPageView: data.autoPage !== 'false',
    trackClicks: data.clicks !== 'false',
    spaPageViews: on(data.spa),
    googleConsentMode: on(data.googleConsentMode),
    tcf: on(data.tcf),
  };
  if (data.flushAt) options.flushAt = +data.flushAt;
  if (data.flushInterval) options.flushInterval = +data.flushInterval;
  const attune = createAttune(options);
  w.attune = attune;
  for (const [method, args] of queued) {
    const [first = '', second] = method.split('.');
    const owner = (second ? (attune as unknown as Record<string, unknown>)[first] : attune) as Record<string, Callable>;
    owner[second ?? first]?.(...args);
  }
}
