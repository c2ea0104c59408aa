/**
 * The catalog at the edge: a snapshot from Directus, indexed once per version and kept in
 * isolate memory, shared between isolates through EDGE_CACHE (KV) under a version key.
 * The Directus webhook calls `invalidateCatalog`, which bumps the version: this isolate
 * reloads at once, others within CATALOG_RECHECK_MS.
 */
import { buildCatalogIndex, type CatalogIndex } from './catalog-index.ts';
import type { CatalogSnapshot } from './fixtures/catalog.ts';
import { loadCatalogFromDirectus } from './source.ts';

export type { CatalogIndex } from './catalog-index.ts';
export type { CatalogSnapshot } from './fixtures/catalog.ts';

/** KV key holding the current catalog version. */
export const CATALOG_VERSION_KEY = 'catalog:version';
const snapshotKey = (version: string) => `catalog:snapshot:${version}`;
/** How often an isolate checks KV for a newer version (KV reads are cached at the edge anyway). */
export const CATALOG_RECHECK_MS = 30_000;
/** After a failed Directus read with nothing cached, wait this long before trying again. */
const FAILURE_RETRY_MS = 5_000;

interface Memo {
  index: CatalogIndex;
  checkedAt: number;
}

/** The bindings the catalog needs (a narrower view of Env, so tests can point it elsewhere). */
export interface CatalogEnv {
  EDGE_CACHE: KVNamespace;
  DIRECTUS_URL: string;
  DIRECTUS_TOKEN: string;
}

let memo: Memo | undefined;
let loading: Promise<CatalogIndex> | undefined;

const EMPTY: CatalogSnapshot = { version: 'empty', products: [], slotContent: [], triggerRules: [] };

/** The indexed catalog for decisions; never throws (an unreadable source yields the last good or an empty catalog). */
export async function getCatalog(env: CatalogEnv): Promise<CatalogIndex> {
  const now = Date.now();
  if (memo && now - memo.checkedAt < CATALOG_RECHECK_MS) return memo.index;
  loading ??= refresh(env, now).finally(() => {
    loading = undefined;
  });
  // Stale while revalidating: a decision never waits for KV or Directus when this isolate
  // already holds a catalog (a hung Directus would otherwise hold every request for its timeout).
  return memo ? memo.index : loading;
}

async function refresh(env: CatalogEnv, now: number): Promise<CatalogIndex> {
  try {
    let version = await env.EDGE_CACHE.get(CATALOG_VERSION_KEY);
    if (memo && version !== null && memo.index.version === version) {
      memo = { index: memo.index, checkedAt: now };
      return memo.index;
    }
    if (version !== null) {
      const stored = await env.EDGE_CACHE.get<CatalogSnapshot>(snapshotKey(version), 'json');
      if (stored) return remember(stored, now);
    } else {
      version = newVersion();
      await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, version);
    }
    const { snapshot, skipped } = await loadCatalogFromDirectus(env, version);
    if (skipped.length > 0)
      console.warn(
        JSON.stringify({ msg: 'catalog rows skipped', count: skipped.length, first: skipped.slice(0, 5) }),
      );
    await env.EDGE_CACHE.put(snapshotKey(version), JSON.stringify(snapshot), {
      expirationTtl: 7 * 24 * 3600,
    });
    return remember(snapshot, now);
  } catch (error) {
    console.warn(JSON.stringify({ msg: 'catalog unavailable', error: String(error) }));
    if (memo) {
      memo = { index: memo.index, checkedAt: now - CATALOG_RECHECK_MS + FAILURE_RETRY_MS };
      return memo.index;
    }
    const index = buildCatalogIndex(EMPTY);
    memo = { index, checkedAt: now - CATALOG_RECHECK_MS + FAILURE_RETRY_MS };
    return index;
  }
}

function remember(snapshot: CatalogSnapshot, now: number): CatalogIndex {
  const index = buildCatalogIndex(snapshot);
  memo = { index, checkedAt: now };
  return index;
}

function newVersion(): string {
  return `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Marks the cached catalog stale (the Directus webhook calls this on any change to
 * products, slot content or trigger rules): the next decision in this isolate reloads
 * from Directus, other isolates follow within CATALOG_RECHECK_MS.
 */
export async function invalidateCatalog(env: CatalogEnv): Promise<string> {
  const version = newVersion();
  await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, version);
  memo = undefined;
  return version;
}

/** Publishes a snapshot as the current catalog (seeding local runs and tests; a bulk import). */
export async function putCatalogSnapshot(env: CatalogEnv, snapshot: CatalogSnapshot): Promise<void> {
  await env.EDGE_CACHE.put(snapshotKey(snapshot.version), JSON.stringify(snapshot));
  await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, snapshot.version);
  memo = undefined;
}
