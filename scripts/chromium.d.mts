// Types for scripts/chromium.mjs, for the TypeScript test suites that launch Chromium.
export declare const CHROMIUM_ARGS: string[];
