/**
 * What the edge's caches (the consent configuration, the catalog) share about KV: writes of
 * the keys that tell every isolate a cache changed (the configuration's generation, the
 * catalog's version), and when a read through KV is given up. KV takes one write a second
 * per key, so two changes a marketer makes within a second get the second write refused;
 * lost, it would keep the previous configuration or catalog in force everywhere until the
 * next change.
 */

/**
 * A cache read (KV, then Directus) in flight for longer than this is given up on and a new
 * one started: KV calls have no timeout of their own, and a read the runtime cancelled with
 * its request's waitUntil (30 s after the response) never settles, so the cache would wait
 * on it for good.
 */
export const READ_GIVEN_UP_MS = 20_000;

/** How long to wait before writing the same key again. */
const SAME_KEY_WRITE_MS = 1_100;

/** Puts `value` under `key`, once more a second later if KV refuses it; rejects if that fails too. */
export async function putChangeMarker(kv: KVNamespace, key: string, value: string): Promise<void> {
  await kv.put(key, value).catch(async () => {
    await new Promise((resolve) => setTimeout(resolve, SAME_KEY_WRITE_MS));
    await kv.put(key, value);
  });
}
