/**
 * "Viewed next" co-visitation: the queue consumer hands the pairs of each queue message to
 * `applyCovisits`, which aggregates them and writes each shard once per batch, under the
 * messages' ids so that a redelivered message is not counted twice; decisions
 * read the successors of a person's last viewed products with `readCovisits`, through an
 * isolate cache and a short timeout, so a slow shard costs a weaker recommendation,
 * never a slow page.
 */
import type { CovisitMessage } from '@attune/shared-schema';
import { catalogListsProducts, getCatalog } from '../catalog/index.ts';
import { hash32 } from '../hash/index.ts';
import type { CountedMessage, NextItem, Transition } from './covisitation-do.ts';
import type { CovisitCounts } from './scorer.ts';

/** Shards per site: one CovisitationDO holds the successors of the products hashed to it. */
export const COVISIT_SHARDS = 32;
/** How long a read result stays in isolate memory. */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX_ENTRIES = 5_000;
/** Successors read per product. */
const NEXT_LIMIT = 20;

/** The shard of a source product within a site. */
export function covisitShard(siteId: string, productId: string): number {
  return hash32(`${siteId}\u0000${productId}`) % COVISIT_SHARDS;
}

function shardStub(env: Env, siteId: string, shard: number) {
  return env.COVISITATION.get(env.COVISITATION.idFromName(`${siteId}/covisit/${shard}`));
}

const validId = (id: unknown): id is string => typeof id === 'string' && id.length > 0 && id.length <= 128;

/** The "viewed next" pairs of one queue message (a `covisits` message, or a single `covisit`). */
export interface CovisitDelivery {
  /** The queue message's id: the same on every redelivery, so a shard counts the message once. */
  messageId: string;
  visits: CovisitMessage[];
}

/**
 * Aggregates a batch's pairs and writes each shard once, per message. Throws when a shard
 * write fails, so the queue redelivers the batch: the shards that counted it remember its
 * messages (CovisitationDO.record) and count them no more, the others count them then.
 */
export async function applyCovisits(env: Env, deliveries: CovisitDelivery[]): Promise<number> {
  // Only pairs of products the catalog holds are counted: a browser can name any id, and
  // made-up ones grew a site's shards without bound (nothing prunes a source product, and
  // no erasure reaches counts that name nobody). Without a catalog to judge by (none read
  // yet, Directus unreachable), every pair counts, as before. Each site's pairs are judged by
  // its own catalog: another site's product ids are not this site's products.
  const sites = new Set<string>();
  for (const { visits: pairs } of deliveries)
    for (const m of pairs) if (validId(m.siteId)) sites.add(m.siteId);
  const catalogs = new Map(
    await Promise.all([...sites].map(async (siteId) => [siteId, await getCatalog(env, siteId)] as const)),
  );
  // A site with no products of its own beside other sites' has none to count (its made-up
  // ids grew its shards as before); only a catalog listing no product at all counts all.
  const judged = catalogListsProducts();
  const inCatalog = (siteId: string, id: string) => {
    const catalog = catalogs.get(siteId);
    return catalog === undefined || (!judged && catalog.products.length === 0) || catalog.indexById.has(id);
  };
  const byShard = new Map<
    string,
    { siteId: string; shard: number; messages: Map<string, Map<string, Transition>> }
  >();
  let visits = 0;
  for (const { messageId, visits: pairs } of deliveries) {
    visits += pairs.length;
    for (const m of pairs) {
      if (!validId(m.siteId) || !validId(m.from) || !validId(m.to) || m.from === m.to) continue;
      if (!inCatalog(m.siteId, m.from) || !inCatalog(m.siteId, m.to)) continue;
      const shard = covisitShard(m.siteId, m.from);
      const key = `${m.siteId}\u0000${shard}`;
      let group = byShard.get(key);
      if (!group) {
        group = { siteId: m.siteId, shard, messages: new Map() };
        byShard.set(key, group);
      }
      let counts = group.messages.get(messageId);
      if (!counts) {
        counts = new Map();
        group.messages.set(messageId, counts);
      }
      const pair = `${m.from}\u0000${m.to}`;
      const t = counts.get(pair);
      if (t) t.count++;
      else counts.set(pair, { from: m.from, to: m.to, count: 1 });
    }
  }
  await Promise.all(
    [...byShard.values()].map(async (g) => {
      const messages: CountedMessage[] = [...g.messages].map(([messageId, counts]) => ({
        messageId,
        transitions: [...counts.values()],
      }));
      await shardStub(env, g.siteId, g.shard).record(messages);
      for (const counts of g.messages.values())
        for (const t of counts.values()) cache.delete(`${g.siteId}\u0000${t.from}`);
    }),
  );
  return visits;
}

const cache = new Map<string, { at: number; next: NextItem[] }>();

/**
 * The successors of `productIds` for a site, within `timeoutMs`: cached entries at once,
 * the rest from their shards in parallel; whatever has not answered in time is left out.
 */
export async function readCovisits(
  env: Env,
  siteId: string,
  productIds: string[],
  timeoutMs: number,
): Promise<CovisitCounts> {
  const result: CovisitCounts = new Map();
  const now = Date.now();
  const missing = new Map<number, string[]>();
  for (const id of new Set(productIds)) {
    if (!validId(id)) continue;
    const hit = cache.get(`${siteId}\u0000${id}`);
    if (hit && now - hit.at < CACHE_TTL_MS) {
      result.set(id, hit.next);
      continue;
    }
    const shard = covisitShard(siteId, id);
    const list = missing.get(shard);
    if (list) list.push(id);
    else missing.set(shard, [id]);
  }
  if (missing.size === 0) return result;
  const reads = [...missing].map(async ([shard, ids]) => {
    const next = await shardStub(env, siteId, shard).nextOf(ids, NEXT_LIMIT);
    for (const id of ids) {
      const list = next[id] ?? [];
      const key = `${siteId}\u0000${id}`;
      cache.delete(key);
      cache.set(key, { at: Date.now(), next: list });
      result.set(id, list);
    }
    // A full cache drops the entries it has held longest (a Map iterates in insertion
    // order), not every product at once.
    for (const key of cache.keys()) {
      if (cache.size <= CACHE_MAX_ENTRIES) break;
      cache.delete(key);
    }
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.allSettled(reads),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  // A copy: late shard answers still fill the cache but must not change a decision already made.
  return new Map(result);
}

/** A product's successors if this isolate holds them fresh (no read), else undefined. */
export function cachedCovisits(siteId: string, productId: string): NextItem[] | undefined {
  const hit = cache.get(`${siteId}\u0000${productId}`);
  return hit && Date.now() - hit.at < CACHE_TTL_MS ? hit.next : undefined;
}

/** Forgets cached successors (tests; a catalog reset). */
export function clearCovisitCache(): void {
  cache.clear();
}
