/**
 * Writes of the KV keys that tell every isolate a cache changed (the consent configuration's
 * generation, the catalog's version). KV takes one write a second per key, so two changes a
 * marketer makes within a second get the second write refused; lost, it would keep the
 * previous configuration or catalog in force everywhere until the next change.
 */

/** How long to wait before writing the same key again. */
const SAME_KEY_WRITE_MS = 1_100;

/** Puts `value` under `key`, once more a second later if KV refuses it; rejects if that fails too. */
export async function putChangeMarker(kv: KVNamespace, key: string, value: string): Promise<void> {
  await kv.put(key, value).catch(async () => {
    await new Promise((resolve) => setTimeout(resolve, SAME_KEY_WRITE_MS));
    await kv.put(key, value);
  });
}
