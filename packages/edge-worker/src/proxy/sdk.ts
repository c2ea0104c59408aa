/**
 * The browser SDK's script-tag build, served first-party at `/attune/attune.js`. The script is
 * part of the Worker's bundle (a Text module written by `pnpm build`, scripts/copy-sdk.mjs),
 * not a static asset: a Worker with static assets has every request — each ingest batch too —
 * routed through the assets router first, which costs more than this one 8 KB script is worth.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app.ts';
import script from './sdk-script.txt';

/** A strong validator for the script, made once per isolate (the bundle's content never changes within one). */
let etag: Promise<string> | undefined;

function scriptEtag(): Promise<string> {
  etag ??= crypto.subtle
    .digest('SHA-256', new TextEncoder().encode(script))
    .then(
      (digest) =>
        `"${[...new Uint8Array(digest).slice(0, 12)].map((b) => b.toString(16).padStart(2, '0')).join('')}"`,
    );
  return etag;
}

const JAVASCRIPT = 'text/javascript; charset=utf-8';

export async function serveSdk(c: Context<AppEnv>): Promise<Response> {
  if (script === '')
    return c.text('// Attune SDK not built: run `pnpm build` (packages/browser-sdk/dist/attune.js)\n', 404, {
      'content-type': JAVASCRIPT,
      'cache-control': 'no-store',
    });
  const tag = await scriptEtag();
  const headers = { 'content-type': JAVASCRIPT, 'cache-control': 'public, max-age=300', etag: tag };
  // A browser revalidating after max-age: the script is unchanged unless the Worker was redeployed.
  const wanted = c.req.header('if-none-match');
  if (wanted?.split(',').some((t) => t.trim().replace(/^W\//, '') === tag))
    return new Response(null, { status: 304, headers });
  return new Response(script, { status: 200, headers });
}
