/**
 * The browser SDK's script-tag build, served first-party at `/attune/attune.js`. The script is
 * part of the Worker's bundle (a Text module written by `pnpm build`, scripts/copy-sdk.mjs),
 * not a static asset: a Worker with static assets has every request — each ingest batch too —
 * routed through the assets router first, which costs more than this one ~10 KB script is worth.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app.ts';
import script from './sdk-script.txt';

const JAVASCRIPT = 'text/javascript; charset=utf-8';

/**
 * A validator for this bundle's script (FNV-1a over its text, and its length): it only has
 * to change when the script does, so no cryptographic hash is needed.
 */
function scriptEtag(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return `"${text.length.toString(36)}-${(hash >>> 0).toString(16).padStart(8, '0')}"`;
}

const ETAG = scriptEtag(script);

/** Whether an If-None-Match header names the script's current version (weak comparison, RFC 9110). */
function unchanged(ifNoneMatch: string | undefined): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === ETAG);
}

/** `GET /attune/attune.js`: the script, 304 when the browser's copy is current, 404 with build instructions when not built. */
export function serveSdk(c: Context<AppEnv>): Response {
  if (script === '')
    return c.text('// Attune SDK not built: run `pnpm build` (packages/browser-sdk/dist/attune.js)\n', 404, {
      'content-type': JAVASCRIPT,
      'cache-control': 'no-store',
    });
  const headers = { 'content-type': JAVASCRIPT, 'cache-control': 'public, max-age=300', etag: ETAG };
  // A browser revalidating after max-age: the script is unchanged unless the Worker was redeployed.
  if (unchanged(c.req.header('if-none-match'))) return new Response(null, { status: 304, headers });
  return new Response(script, { status: 200, headers });
}
