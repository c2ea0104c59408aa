/**
 * The catalog at the edge: a snapshot from Directus, indexed once per version and site and
 * kept in isolate memory, shared between isolates through EDGE_CACHE (KV) under a version key.
 * A site is served its own rows and the shared ones (no `siteId`), never another site's.
 * The Directus webhook calls `invalidateCatalog`, which bumps the version: this isolate
 * reloads at once, others within CATALOG_RECHECK_MS.
 */
import { waitUntil } from 'cloudflare:workers';
import { withinBudget } from '../budget/index.ts';
import { putChangeMarker, READ_GIVEN_UP_MS } from '../kv/index.ts';
import { log } from '../observability/index.ts';
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
/** How long a snapshot stays in KV (a version nobody has read for that long is read from Directus again). */
const SNAPSHOT_TTL_S = 7 * 24 * 3600;
/** After a failed Directus read, wait this long before trying again (serving what is held meanwhile). */
const FAILURE_RETRY_MS = 5_000;

/**
 * A snapshot as read, with its indexes built so far: one per site that owns rows and asked,
 * and one of the shared rows alone (key SHARED) for every site that owns none — so a
 * deployment whose rows are all shared builds one index per version, however many sites.
 */
interface HeldCatalog {
  snapshot: CatalogSnapshot;
  /** The sites that own rows of the snapshot, with how many (rowsPerSite). */
  owners: ReadonlyMap<string, number>;
  bySite: Map<string, CatalogIndex>;
  /** The sites served from it in this isolate, to index the next version for at once. */
  served: Set<string>;
}

/** The index key of the shared rows alone (no site id is empty, see sites/index.ts). */
const SHARED = '';

interface Memo {
  held: HeldCatalog;
  checkedAt: number;
}

/**
 * Holds a snapshot, indexed at once for `sites` (see prebuiltSites): built in a refresh that
 * runs off the request, not by the next decision of each site.
 */
function hold(snapshot: CatalogSnapshot, sites: Iterable<string> = []): HeldCatalog {
  const held: HeldCatalog = { snapshot, owners: rowsPerSite(snapshot), bySite: new Map(), served: new Set() };
  for (const siteId of sites) indexFor(held, siteId);
  return held;
}

/**
 * The sites a refresh indexes ahead: those the catalog it replaces served, but only while
 * revalidating (a catalog is held, and no decision waits for the refresh). With none held
 * (after an invalidation) the next decision waits for the refresh, and each index is a
 * synchronous build no budget can cut short: that decision builds its own site's, and each
 * other site's first decision its own, instead of one decision building them all.
 */
function prebuiltSites(): string[] {
  return memo ? [...memo.held.served] : [];
}

/** How many rows (products, slot content, trigger rules) each site owns; shared rows are no site's. */
function rowsPerSite(snapshot: CatalogSnapshot): Map<string, number> {
  const owners = new Map<string, number>();
  for (const rows of [snapshot.products, snapshot.slotContent, snapshot.triggerRules])
    for (const { siteId } of rows)
      if (siteId !== undefined) owners.set(siteId, (owners.get(siteId) ?? 0) + 1);
  return owners;
}

/** A site's rows of a snapshot: its own and the shared ones. */
export function siteCatalog(snapshot: CatalogSnapshot, siteId: string): CatalogSnapshot {
  const ours = (row: { siteId?: string }) => row.siteId === undefined || row.siteId === siteId;
  return {
    version: snapshot.version,
    products: snapshot.products.filter(ours),
    slotContent: snapshot.slotContent.filter(ours),
    triggerRules: snapshot.triggerRules.filter(ours),
  };
}

/**
 * The site's index of a held snapshot, built once per version in this isolate for each site
 * that owns rows, and once for all the others (the shared rows are all they are served).
 */
function indexFor(held: HeldCatalog, siteId: string): CatalogIndex {
  held.served.add(siteId);
  const key = held.owners.has(siteId) ? siteId : SHARED;
  let index = held.bySite.get(key);
  if (index === undefined) {
    index = buildCatalogIndex(siteCatalog(held.snapshot, key));
    held.bySite.set(key, index);
  }
  return index;
}

/** The bindings the catalog needs (a narrower view of Env, so tests can point it elsewhere). */
export interface CatalogEnv {
  EDGE_CACHE: KVNamespace;
  DIRECTUS_URL: string;
  DIRECTUS_TOKEN: string;
}

let memo: Memo | undefined;
/**
 * The last catalog a read installed, kept across invalidations: what a decision serves
 * while a load is slower than its budget (an invalidated catalog beats no catalog).
 */
let lastGood: HeldCatalog | undefined;
let loading: { refresh: Promise<HeldCatalog>; startedAt: number } | undefined;
/**
 * Bumped by every invalidation, and when a stuck refresh is given up: a refresh that began
 * before must not install what it read.
 */
let generation = 0;

const EMPTY: CatalogSnapshot = { version: 'empty', products: [], slotContent: [], triggerRules: [] };
let emptyIndex: CatalogIndex | undefined;

/** The empty catalog (defaults only), indexed once per isolate. */
function emptyCatalog(): CatalogIndex {
  emptyIndex ??= buildCatalogIndex(EMPTY);
  return emptyIndex;
}

/**
 * What a decision uses when `getCatalog` is slower than its budget: the site's part of the
 * last catalog this isolate read (even one invalidated since), else an empty one (defaults only).
 */
export function lastCatalog(siteId: string): CatalogIndex {
  return lastGood ? indexFor(lastGood, siteId) : emptyCatalog();
}

/**
 * Whether the catalog this isolate holds lists any product, of any site. A site whose own
 * index is empty beside such a catalog has no products; only with none listed at all (none
 * read yet, Directus unreachable, a catalog not filled yet) is there nothing to judge by.
 */
export function catalogListsProducts(): boolean {
  return ((memo?.held ?? lastGood)?.snapshot.products.length ?? 0) > 0;
}

/**
 * The site's indexed catalog for decisions; never throws (an unreadable source yields the
 * last good or an empty catalog). `keepAlive` is the request's waitUntil (the runtime's by default).
 */
export async function getCatalog(
  env: CatalogEnv,
  siteId: string,
  keepAlive: (promise: Promise<unknown>) => void = waitUntil,
): Promise<CatalogIndex> {
  const now = Date.now();
  if (memo && now - memo.checkedAt < CATALOG_RECHECK_MS) return indexFor(memo.held, siteId);
  if (loading && now - loading.startedAt > READ_GIVEN_UP_MS) {
    // Stuck (see READ_GIVEN_UP_MS): without giving it up, this isolate would serve the
    // catalog it holds for good, however often a marketer changed it since.
    generation++;
    loading = undefined;
  }
  if (!loading) {
    const started = refresh(env, now, generation).finally(() => {
      if (loading?.refresh === started) loading = undefined;
    });
    loading = { refresh: started, startedAt: now };
    // The request that starts a refresh may answer before it ends (it is served the catalog it
    // already holds). workerd cancels a request's unfinished I/O with its response unless it
    // was handed to waitUntil: the refresh would never settle, this isolate would keep its
    // stale catalog for good, and after an invalidation every request waiting on it would hang.
    keepAlive(started);
  }
  // Stale while revalidating: a decision never waits for KV or Directus when this isolate
  // already holds a catalog (a hung Directus would otherwise hold every request for its timeout).
  if (memo) return indexFor(memo.held, siteId);
  // With none held, a caller waits, but not past the point where the refresh is given up:
  // one stuck for good (see READ_GIVEN_UP_MS) would hold callers with no budget of their
  // own, a trigger run's follow-ups, for good. They get what a slow decision gets.
  return withinBudget(
    loading.refresh.then((held) => indexFor(held, siteId)),
    loading.startedAt + READ_GIVEN_UP_MS - now,
    lastCatalog(siteId),
  );
}

/** Installs what a refresh found, unless an invalidation came after the refresh began. */
function keep(from: number, next: Memo, read = true): HeldCatalog {
  if (from === generation) {
    memo = next;
    // A failure's stand-in is not a catalog that was read.
    if (read) lastGood = next.held;
  }
  return next.held;
}

async function refresh(env: CatalogEnv, now: number, from: number): Promise<HeldCatalog> {
  try {
    let version = await env.EDGE_CACHE.get(CATALOG_VERSION_KEY);
    if (memo && version !== null && memo.held.snapshot.version === version)
      return keep(from, { held: memo.held, checkedAt: now });
    if (version !== null) {
      const stored = await env.EDGE_CACHE.get<CatalogSnapshot>(snapshotKey(version), 'json');
      if (stored) return keep(from, { held: hold(stored, prebuiltSites()), checkedAt: now });
    } else {
      version = newVersion();
      await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, version);
    }
    const { snapshot, skipped } = await loadCatalogFromDirectus(env, version);
    if (skipped.length > 0)
      console.warn(
        JSON.stringify({ msg: 'catalog rows skipped', count: skipped.length, first: skipped.slice(0, 5) }),
      );
    try {
      await env.EDGE_CACHE.put(snapshotKey(version), JSON.stringify(snapshot), {
        expirationTtl: SNAPSHOT_TTL_S,
      });
    } catch (error) {
      // Not shared with other isolates (each reads Directus itself), but served here: a
      // snapshot KV refuses (over its 25 MiB value limit) left the isolate on an empty or
      // old catalog, reading all of Directus again every few seconds.
      console.warn(JSON.stringify({ msg: 'catalog not cached in KV', error: String(error).slice(0, 200) }));
    }
    return keep(from, { held: hold(snapshot, prebuiltSites()), checkedAt: now });
  } catch (error) {
    console.warn(JSON.stringify({ msg: 'catalog unavailable', error: String(error) }));
    const retryAt = now - CATALOG_RECHECK_MS + FAILURE_RETRY_MS;
    // After an invalidation `memo` is gone but the last catalog read is not: a Directus
    // outage must not turn every slot back to its defaults while one is at hand.
    return keep(from, { held: memo?.held ?? lastGood ?? hold(EMPTY), checkedAt: retryAt }, false);
  }
}

function newVersion(): string {
  return `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Marks the cached catalog stale (the Directus webhook calls this on any change to
 * products, slot content or trigger rules): the next decision in this isolate reloads
 * from Directus, other isolates follow within CATALOG_RECHECK_MS. This isolate forgets at
 * once, whatever KV does (and again after the write: a refresh begun meanwhile may have
 * read the previous version).
 */
export async function invalidateCatalog(env: CatalogEnv): Promise<string> {
  const version = newVersion();
  forget();
  try {
    await putChangeMarker(env.EDGE_CACHE, CATALOG_VERSION_KEY, version);
  } finally {
    forget();
  }
  return version;
}

/** Drops this isolate's catalog and any refresh under way, so the next request reads the new one. */
function forget(): void {
  generation++;
  memo = undefined;
  loading = undefined;
}

/**
 * Publishes what Directus holds when it differs from the catalog in force (KV's current
 * snapshot), as the webhook would have: a change whose notice never reached the Worker (it
 * was down or deploying, Directus's Flow failed) would otherwise be served until the
 * snapshot expires, a week later. The scheduled check calls this; isolates then read the
 * new snapshot from KV, not each from Directus. Returns whether it published. Throws when
 * Directus or KV cannot be read (nothing changes then).
 */
export async function reconcileCatalog(env: CatalogEnv, siteIds?: readonly string[]): Promise<boolean> {
  const version = await env.EDGE_CACHE.get(CATALOG_VERSION_KEY);
  const current =
    version === null ? null : await env.EDGE_CACHE.get<CatalogSnapshot>(snapshotKey(version), 'json');
  const { snapshot } = await loadCatalogFromDirectus(env, newVersion());
  if (siteIds !== undefined) warnOfRowsForNoSite(snapshot, siteIds);
  const content = (c: CatalogSnapshot) => JSON.stringify([c.products, c.slotContent, c.triggerRules]);
  if (current !== null && content(current) === content(snapshot)) return false;
  // A notice that arrived meanwhile made its own version, whose readers load Directus after
  // the change: publishing what this check read earlier would put it back.
  if ((await env.EDGE_CACHE.get(CATALOG_VERSION_KEY)) !== version) return false;
  await env.EDGE_CACHE.put(snapshotKey(snapshot.version), JSON.stringify(snapshot), {
    expirationTtl: SNAPSHOT_TTL_S,
  });
  await putChangeMarker(env.EDGE_CACHE, CATALOG_VERSION_KEY, snapshot.version);
  forget();
  return true;
}

/**
 * Says which site ids of the catalog's rows name no site the Worker serves: such a row
 * (a typo, `Demo` for `demo`, or a site since removed) is served to no one, and a marketer
 * who saved it would otherwise never learn why it does not show. Site ids only: no person.
 */
export function warnOfRowsForNoSite(snapshot: CatalogSnapshot, siteIds: readonly string[]): void {
  const served = new Set(siteIds);
  const unknown = new Map([...rowsPerSite(snapshot)].filter(([siteId]) => !served.has(siteId)));
  if (unknown.size === 0) return;
  const named = [...unknown.keys()].slice(0, 5).map((id) => JSON.stringify(id.slice(0, 64)));
  log('warn', 'catalog.rows_for_no_site', {
    rows: [...unknown.values()].reduce((n, c) => n + c, 0),
    siteIds: named.join(', '),
    fix: `set site_id to one of the served sites (${[...served].slice(0, 5).join(', ')}) or leave it empty for every site`,
  });
}

/** Publishes a snapshot as the current catalog (seeding local runs and tests; a bulk import). */
export async function putCatalogSnapshot(env: CatalogEnv, snapshot: CatalogSnapshot): Promise<void> {
  await env.EDGE_CACHE.put(snapshotKey(snapshot.version), JSON.stringify(snapshot));
  await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, snapshot.version);
  forget();
}
