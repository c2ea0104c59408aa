// What each part of the script tag costs: the tag is rebuilt with that part's module replaced
// by an empty stand-in, and the cost is the difference in min+gzip bytes (gzip -9, as
// size-limit measures). The last line is the core alone, with every optional part stubbed.
// Run: node scripts/feature-costs.mjs (figures quoted in README.md, "Size budget").
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { bundle } from './build.mjs';

const page = await readFile(new URL('../src/page/page.ts', import.meta.url), 'utf8');
const historyAt = page.indexOf('/**\n * Calls `onPage');
const noContext = "export const VERSION = ''; export const pageContext = () => ({ page: {} });";
const noHistory = 'export const watchHistory = () => {};';

/** Module (path suffix under src/) → stand-in source, per part. */
const parts = {
  'IndexedDB outbox + Web Locks': {
    'store/store.ts': `const get = (f) => { try { return f(); } catch {} };
      export const browserPersistence = () => ({
        load: () => get(() => JSON.parse(localStorage.attune)),
        save: (r) => get(() => { localStorage.attune = JSON.stringify(r); }),
        store() {}, forget() {}, adopt: async () => [], leave() {}, rejoin: async () => undefined,
        wipe: () => get(() => localStorage.removeItem('attune')),
      });`,
  },
  'page context': { 'page/page.ts': noContext + page.slice(historyAt) },
  'SPA page views': { 'page/page.ts': page.slice(0, historyAt) + noHistory },
  ULIDs: { 'ids/ids.ts': 'let n = 0; export const ulid = () => String(n++);' },
  'Google Consent Mode': { 'consent/google-consent-mode.ts': 'export const emitGoogleConsent = () => {};' },
  'TCF adapter': { 'consent/tcf.ts': 'export const listenTcf = () => {};' },
  'click tracking': { 'clicks/clicks.ts': 'export const watchClicks = () => {};' },
  decide: {
    'decide/decide.ts': 'export const fetchDecisions = async () => ({});',
  },
  'retry policy': {
    'retry/retry.ts': 'export const isRetryable = () => true; export const retryDelay = () => 1000;',
  },
};
const optional = [
  'IndexedDB outbox + Web Locks',
  'Google Consent Mode',
  'TCF adapter',
  'click tracking',
  'decide',
];

const stub = (modules) => ({
  name: 'stub',
  setup(build) {
    build.onLoad({ filter: /[/\\]src[/\\].*\.ts$/ }, ({ path }) => {
      const found = Object.entries(modules).find(([suffix]) =>
        path.replaceAll('\\', '/').endsWith(`src/${suffix}`),
      );
      return found && { contents: found[1], loader: 'ts' };
    });
  },
});
const size = async (modules = {}) =>
  gzipSync(await bundle('src/script.ts', 'iife', { plugins: [stub(modules)] }), { level: 9 }).length;

const whole = await size();
console.log(`| part | min+gzip bytes |\n|---|---:|\n| the whole tag | ${whole} |`);
for (const [name, modules] of Object.entries(parts))
  console.log(`| ${name} | ${whole - (await size(modules))} |`);
const core = Object.assign({}, ...optional.map((name) => parts[name]), {
  'page/page.ts': noContext + noHistory,
});
console.log(
  `| core alone (${optional.join(', ')}, page context and SPA page views stubbed) | ${await size(core)} |`,
);
