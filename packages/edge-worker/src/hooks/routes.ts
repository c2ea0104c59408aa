/**
 * POST /v1/hooks/directus: Directus Flows tell the edge that the catalog, slot content,
 * trigger rules or consent categories changed. The body is signed with HOOK_SECRET; a
 * valid call invalidates the matching edge caches (a consent-category change also
 * changes the policy version, see config/consent-config.ts). Each signed hook is accepted
 * once: a replay of it within the signature window is refused (receipts-do.ts).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app.ts';
import { invalidateCatalog } from '../catalog/index.ts';
import { invalidateConsentConfig } from '../config/consent-config.ts';
import { readBodyLimited } from '../ingest/body.ts';
import { log, logOnce } from '../observability/index.ts';
import { HOOK_RECEIPTS_OBJECT } from './receipts-do.ts';
import { MIN_HOOK_SECRET_CHARS, signatureHex, verifyHookSignature } from './signature.ts';

export const hookRoutes = new Hono<AppEnv>();

const MAX_BODY_BYTES = 64 * 1024;
/** A signed call older (or newer) than this is refused, so a captured one cannot be replayed later. */
export const HOOK_MAX_SKEW_MS = 10 * 60 * 1000;

const HookBodySchema = z.object({
  source: z.literal('directus'),
  collection: z.string().min(1).max(64),
  event: z.string().max(128),
  keys: z.array(z.string().max(256)).max(1000),
  at: z.iso.datetime({ offset: true }),
});

const CATALOG_COLLECTIONS = new Set(['products', 'slot_content', 'trigger_rules']);

const fail = (code: string, message: string) => ({ error: { code, message } });

/** How long Directus should wait before sending a change notice again: past KV's one write a second per key. */
const RETRY_AFTER_S = 2;
/** A receipt outlives its hook's window by this much: the object's clock may differ a little from the isolate's. */
const RECEIPT_MARGIN_MS = 60 * 1000;

function hookReceipts(env: Env) {
  return env.HOOK_RECEIPTS.get(env.HOOK_RECEIPTS.idFromName(HOOK_RECEIPTS_OBJECT));
}

function reportWeakHookSecret(secret: string): void {
  logOnce(
    `HOOK_SECRET:${secret}`,
    'error',
    `HOOK_SECRET is ${secret === '' ? 'unset' : `shorter than ${MIN_HOOK_SECRET_CHARS} characters`}: every Directus hook is refused (set a long random secret, in Directus's ATTUNE_HOOK_SECRET too)`,
  );
}

hookRoutes.post('/v1/hooks/directus', async (c) => {
  // Unauthenticated until the signature is checked: read at most the limit (a body of
  // unknown length is streamed and cut off there), never buffer whatever is sent.
  const read = await readBodyLimited(c.req.raw, MAX_BODY_BYTES);
  if (!read.ok) {
    return read.reason === 'too_large'
      ? c.json(fail('too_large', `hook body over ${MAX_BODY_BYTES} bytes`), 413)
      : c.json(fail('invalid_json', 'hook body could not be read'), 400);
  }
  const body = read.text;
  const secret = c.env.HOOK_SECRET ?? '';
  if (secret.length < MIN_HOOK_SECRET_CHARS) reportWeakHookSecret(secret);
  const signature = c.req.header('x-attune-signature');
  const mac = signatureHex(signature);
  if (mac === undefined || !(await verifyHookSignature(secret, body, signature))) {
    return c.json(
      fail('bad_signature', 'X-Attune-Signature is missing or does not match the body (HOOK_SECRET)'),
      401,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return c.json(fail('invalid_json', 'hook body is not JSON'), 400);
  }
  const parsed = HookBodySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return c.json(
      fail('invalid_hook', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`),
      400,
    );
  }
  const hook = parsed.data;
  if (Math.abs(Date.now() - Date.parse(hook.at)) > HOOK_MAX_SKEW_MS) {
    return c.json(fail('stale_hook', 'hook `at` is too far from the edge clock; it may be a replay'), 400);
  }
  // Within the window a captured hook could be sent again and again, each time clearing the
  // caches and writing KV. The signature covers the whole body, `at` included, and the
  // scheme has no nonce: (at, signature) names one hook, and distinct hooks (a bulk edit's
  // burst) differ in it. Its receipt is taken in one Durable Object, the only exact answer
  // across isolates and locations (an isolate's memory misses a replay sent to another
  // isolate; KV, being eventually consistent, misses one sent to another location soon
  // after). It costs a hook one call to that object, next to the KV writes it makes anyway.
  const receipt = `${hook.at} ${mac}`;
  let fresh: boolean;
  try {
    fresh = await hookReceipts(c.env).claim(
      receipt,
      Date.parse(hook.at) + HOOK_MAX_SKEW_MS + RECEIPT_MARGIN_MS,
    );
  } catch (e) {
    // Refused rather than applied unchecked: else whoever holds a captured hook could replay
    // it freely whenever the object does not answer.
    log('warn', 'hook.receipt_unavailable', {
      collection: hook.collection,
      error: e instanceof Error ? e.message.slice(0, 200) : 'unknown',
    });
    return c.json(
      fail(
        'receipts_unavailable',
        `whether this hook was already accepted could not be checked, so nothing was invalidated; send the same notice again after ${RETRY_AFTER_S} s (else the scheduled check publishes the change within 5 minutes)`,
      ),
      503,
      { 'retry-after': String(RETRY_AFTER_S) },
    );
  }
  if (!fresh) {
    return c.json(
      fail(
        'replayed',
        'this signed hook (the same `at` and X-Attune-Signature) was already accepted: sent again it changes nothing and is refused. Directus signs each change with a new `at`; to publish a change again, save it again in Directus',
      ),
      409,
    );
  }
  const invalidated: string[] = [];
  try {
    if (CATALOG_COLLECTIONS.has(hook.collection)) {
      await invalidateCatalog(c.env);
      invalidated.push('catalog');
    }
    if (hook.collection === 'consent_categories') {
      await invalidateConsentConfig(c.env);
      invalidated.push('consent-config');
    }
  } catch (e) {
    // KV takes one write a second per key and putChangeMarker has already tried twice: a
    // marketer's bulk edit sends bursts. Not our fault and worth sending again, so no 500.
    log('warn', 'hook.change_not_published', {
      collection: hook.collection,
      // KV's own message (a status, never the hook's keys).
      error: e instanceof Error ? e.message.slice(0, 200) : 'unknown',
    });
    // The change did not take effect everywhere: the same notice sent again must be taken.
    await hookReceipts(c.env)
      .release(receipt)
      .catch(() => log('warn', 'hook.receipt_not_released', { collection: hook.collection }));
    return c.json(
      fail(
        'kv_unavailable',
        `this isolate's own caches were cleared, but the change could not be published to the other isolates (KV refused the write); send the same notice again after ${RETRY_AFTER_S} s (else the scheduled check publishes it within 5 minutes)`,
      ),
      503,
      { 'retry-after': String(RETRY_AFTER_S) },
    );
  }
  return c.json({ ok: true, collection: hook.collection, invalidated });
});
