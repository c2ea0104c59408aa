// The flags headless Chromium needs on this machine and in CI (Debian's /usr/bin/chromium
// driven by playwright-core; Playwright's own browser download cannot work offline): one
// list for the browser SDK's real-browser suites and the shop's end-to-end tests and bench.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
