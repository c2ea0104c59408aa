/**
 * A site's consent configuration (categories and policy version) as the edge enforces
 * and `/v1/config` serves it: read from Directus `consent_categories`, cached in
 * EDGE_CACHE (KV) and in isolate memory (served while a refresh runs in the background),
 * invalidated by the Directus webhook; the built-in defaults when Directus has none for
 * the site. When Directus cannot be reached,
 * the last configuration read for the site stands in (this isolate's, else the last good
 * copy in KV, kept without expiry); with neither, the configuration is unavailable:
 * `/v1/config` says so (503) rather than serve the built-in policy version as the site's,
 * which would set aside every choice made under the site's version.
 *
 * The policy version is derived from the categories themselves: the built-in set keeps
 * DEFAULT_POLICY_VERSION, any change a marketer makes yields a new version (so people
 * are asked again), and every edge location computes the same version without shared
 * state.
 */

import { waitUntil } from 'cloudflare:workers';
import {
  type ConsentCategoryConfig,
  type ConsentConfig,
  ConsentConfigSchema,
  type ConsentState,
  consentInForce,
  DEFAULT_CONSENT_CONFIG,
  DEFAULT_POLICY_VERSION,
  normalizeConsent,
  PURPOSES,
} from '@attune/shared-schema';
import { withinBudget } from '../budget/index.ts';
import { directusFromEnv } from '../directus/client.ts';
import { putChangeMarker, READ_GIVEN_UP_MS } from '../kv/index.ts';
import { log } from '../observability/index.ts';

/** KV key of the consent configuration's cache generation (bumped on invalidation). */
export const CONSENT_CONFIG_VERSION_KEY = 'consent-config:version';
const configKey = (generation: string, siteId: string) => `consent-config:${generation}:${siteId}`;
/**
 * KV key of the last configuration read from Directus for a site, whatever the generation
 * and without expiry: the fallback when Directus cannot be reached and nothing newer is known.
 */
const lastGoodKey = (siteId: string) => `consent-config:last-good:${siteId}`;
/**
 * How long an isolate trusts its memory: past it, a request waits for a fresh read. Halfway
 * through, the first request starts that read in the background and is served from memory,
 * so a busy isolate's requests never wait on KV or Directus, and none is served a
 * configuration read longer ago than this.
 */
export const MEMO_MS = 30_000;
/** After a failed read, the next one starts this much later (not once per request). */
const RETRY_MS = 5_000;
/** KV copies outlive invalidation misses; the generation key makes them unreachable anyway. */
const KV_TTL_SECONDS = 24 * 60 * 60;
/**
 * A Directus read of the categories gives up after this long: every request of the site
 * that finds no configuration in this isolate waits for it, so a hung Directus must turn
 * into the fallback below, not into hung requests (and it must end well within the 30 s a
 * request's waitUntil is given).
 */
const DIRECTUS_TIMEOUT_MS = 5000;

interface CategoryRow {
  key?: unknown;
  label?: unknown;
  description?: unknown;
  required?: unknown;
  enabled?: unknown;
  default?: unknown;
}

interface Remembered {
  config: ConsentConfig;
  /** From then on, a request starts a read in the background (and is still served this). */
  refreshAt: number;
  /** From then on, requests wait for that read. */
  staleAt: number;
  generation: string;
  /** Directus could not be reached and no configuration of the site was known: `config` is the built-ins. */
  unavailable?: true;
}

/** The outcome of reading a site's configuration: unavailable when Directus could not be reached and none was known. */
export type ConsentConfigRead = { ok: true; config: ConsentConfig } | { ok: false };

const memo = new Map<string, Remembered>();

const canonical = (c: ConsentCategoryConfig) =>
  JSON.stringify([c.key, c.label, c.description, c.required, c.enabled, c.default]);

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The policy version of a set of categories: the default for the built-ins, else a content hash. */
export async function policyVersionOf(categories: readonly ConsentCategoryConfig[]): Promise<string> {
  const text = categories.map(canonical).join('\n');
  if (text === DEFAULT_CONSENT_CONFIG.categories.map(canonical).join('\n')) return DEFAULT_POLICY_VERSION;
  return `${DEFAULT_POLICY_VERSION}.${(await sha256Hex(text)).slice(0, 12)}`;
}

/**
 * Builds a ConsentConfig from Directus rows; rows that do not validate are left out. A
 * purpose's category (analytics, personalization, marketing) is never required, whatever
 * its row says: required means granted to everyone, over their refusal, and consent to a
 * purpose must be a choice. Only categories that gate nothing (`necessary`, a marketer's
 * own) may be required; a purpose's `required` is logged and ignored.
 */
export async function consentConfigFromRows(rows: readonly CategoryRow[]): Promise<ConsentConfig> {
  const categories: ConsentCategoryConfig[] = [];
  const rowSchema = ConsentConfigSchema.shape.categories.element;
  for (const row of rows) {
    const purpose = isPurposeKey(row.key);
    if (purpose && row.required === true)
      log('error', `consent category ${row.key} is marked required; ignored (a purpose needs a choice)`);
    const candidate = {
      key: row.key,
      label: row.label,
      description: typeof row.description === 'string' ? row.description : '',
      required: row.required === true && !purpose,
      enabled: row.enabled !== false,
      default: row.default === true,
    };
    const one = rowSchema.safeParse(candidate);
    if (one.success) {
      categories.push(one.data);
      continue;
    }
    const what = one.error.issues
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
      .join('; ')
      .slice(0, 300);
    const key = typeof row.key === 'string' ? row.key.slice(0, 64) : '(no key)';
    // A purpose left out would be off for everyone (no visitor could grant it): one cleared
    // label must not end personalization. Its built-in wording stands in for what cannot be
    // read, until the row is fixed.
    const builtIn = purpose ? DEFAULT_CONSENT_CONFIG.categories.find((c) => c.key === row.key) : undefined;
    const mended =
      builtIn === undefined
        ? undefined
        : rowSchema.safeParse({
            ...candidate,
            label: rowSchema.shape.label.safeParse(candidate.label).success ? candidate.label : builtIn.label,
            description: rowSchema.shape.description.safeParse(candidate.description).success
              ? candidate.description
              : builtIn.description,
          });
    log(
      'error',
      `consent category ${key} cannot be read (${what}); ${mended?.success ? 'its built-in wording stands in for it' : 'left out'} until it is fixed in Directus`,
    );
    if (mended?.success) categories.push(mended.data);
  }
  if (categories.length === 0) return DEFAULT_CONSENT_CONFIG;
  const config = { policyVersion: await policyVersionOf(categories), categories: categories.slice(0, 32) };
  return ConsentConfigSchema.parse(config);
}

const isPurposeKey = (key: unknown): boolean => PURPOSES.some((purpose) => purpose === key);

/**
 * A configuration as read from KV, with every purpose optional (see consentConfigFromRows):
 * a copy written before that rule may still make one required.
 */
function purposesOptional(config: ConsentConfig): ConsentConfig {
  if (!config.categories.some((c) => c.required && isPurposeKey(c.key))) return config;
  return {
    ...config,
    categories: config.categories.map((c) =>
      c.required && isPurposeKey(c.key) ? { ...c, required: false } : c,
    ),
  };
}

async function generationOf(env: Env): Promise<string> {
  return (await env.EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY)) ?? '0';
}

async function loadFromDirectus(env: Env, siteId: string): Promise<ConsentConfig> {
  const directus = directusFromEnv(env, { timeoutMs: DIRECTUS_TIMEOUT_MS });
  const rows = await directus.readItems<CategoryRow>('consent_categories', {
    filter: { _or: [{ site_id: { _empty: true } }, { site_id: { _eq: siteId } }] },
    fields: ['key', 'label', 'description', 'required', 'enabled', 'default'],
    sort: ['sort', 'key'],
    limit: 64,
  });
  const config = await consentConfigFromRows(rows);
  waitUntil(recordPolicyWording(env, siteId, config));
  return config;
}

/** The policy versions whose wording this isolate has recorded (or found recorded) in Directus. */
const recordedWordings = new Set<string>();

/**
 * Keeps what a policy version said, in Directus `policy_versions` (one row per site and
 * version, the first read kept): a consent record names only the version, a hash, and a
 * privacy officer proving consent must show the categories as the person was asked them.
 * Written from here because only the edge computes versions. Never fails the read it
 * follows: a version not recorded now is recorded at the next read, from Directus or from
 * the copy in KV, by this isolate or another.
 */
export async function recordPolicyWording(env: Env, siteId: string, config: ConsentConfig): Promise<void> {
  const id = `${siteId}:${config.policyVersion}`;
  if (recordedWordings.has(id)) return;
  try {
    await directusFromEnv(env, { timeoutMs: DIRECTUS_TIMEOUT_MS }).createMissing('policy_versions', [
      {
        id,
        site_id: siteId,
        policy_version: config.policyVersion,
        categories: config.categories,
        first_seen_at: new Date().toISOString(),
      },
    ]);
    recordedWordings.add(id);
  } catch (e) {
    const reason = e instanceof Error ? e.message.slice(0, 200) : 'unknown';
    log('warn', 'consent_config.wording_not_recorded', { reason });
  }
}

/** Reads in flight per site: concurrent requests share one KV/Directus read (and one failure). */
const inFlight = new Map<string, { read: Promise<ConsentConfigRead>; startedAt: number }>();

/**
 * The consent configuration in force for a site, the built-ins when it is unavailable
 * (see readConsentConfig). Never throws. `keepAlive` is the request's waitUntil (the
 * runtime's by default).
 */
export async function getConsentConfig(
  env: Env,
  siteId: string,
  keepAlive: (promise: Promise<unknown>) => void = waitUntil,
): Promise<ConsentConfig> {
  return configInForce(await readConsentConfig(env, siteId, keepAlive));
}

/** The configuration a read puts in force: the site's, or the built-ins when it is unavailable. */
export const configInForce = (read: ConsentConfigRead): ConsentConfig =>
  read.ok ? read.config : DEFAULT_CONSENT_CONFIG;

/**
 * A browser's claim as a read of the site's configuration puts it in force: none when made
 * under another policy version than the site's (the person is asked again), else what the
 * site offers of it (a disabled category grants nothing). While the configuration cannot be
 * read, the built-ins stand in and the version is not judged. The ingest and the first-party
 * cookies judge a claim with it.
 */
export function claimInForce(claim: ConsentState, read: ConsentConfigRead): ConsentState | undefined {
  return read.ok ? consentInForce(claim, read.config) : normalizeConsent(claim, DEFAULT_CONSENT_CONFIG);
}

/**
 * The consent configuration in force for a site, or `{ ok: false }` when Directus could
 * not be reached and no configuration of the site is known (none in this isolate, no last
 * good copy in KV). Never throws.
 */
export async function readConsentConfig(
  env: Env,
  siteId: string,
  keepAlive: (promise: Promise<unknown>) => void = waitUntil,
): Promise<ConsentConfigRead> {
  const mine = memo.get(siteId);
  const now = Date.now();
  if (mine && now < mine.refreshAt) return outcome(mine);
  let pending = inFlight.get(siteId);
  if (!pending || now - pending.startedAt > READ_GIVEN_UP_MS) {
    const started = loadConsentConfig(env, siteId).finally(() => {
      if (inFlight.get(siteId)?.read === started) inFlight.delete(siteId);
    });
    pending = { read: started, startedAt: now };
    inFlight.set(siteId, pending);
    // Other requests wait on this read too. If the request that started it is cancelled (its
    // client went away), workerd cancels its unfinished I/O unless it was handed to
    // waitUntil: the read would never settle, and every request of the site in this isolate
    // would wait on it for good. (What is kept resolves to the configuration in force.)
    keepAlive(started.then(configInForce));
  }
  // Read ahead (see MEMO_MS): until the memory is stale it is served while the read runs. An
  // invalidation in this isolate drops the memory, so the request after it waits.
  if (mine && now < mine.staleAt) return outcome(mine);
  // A caller waits, but not past the point where the read is given up: one stuck for good
  // would hold every request of the site in this isolate until the runtime cancelled it.
  return withinBudget(pending.read, pending.startedAt + READ_GIVEN_UP_MS - now, { ok: false });
}

/**
 * The configuration this isolate holds for a site, unless it is stale (older than MEMO_MS
 * since last confirmed; an invalidation drops it): what a decision uses when
 * `getConsentConfig` is slower than its budget (the built-ins while the configuration is
 * unavailable). Undefined when none is held or it is stale, and then a decision grants
 * nothing: an isolate idle for an hour must not personalize under a configuration another
 * isolate has since replaced (a category disabled).
 */
export function lastConsentConfig(siteId: string): ConsentConfig | undefined {
  const held = memo.get(siteId);
  return held !== undefined && Date.now() < held.staleAt ? held.config : undefined;
}

/** Bumped by every invalidation: a read that began before it must not install what it read. */
let invalidations = 0;

/** When a configuration read at `now` is read again in the background, and when it goes stale. */
const readAt = (now: number) => ({ refreshAt: now + MEMO_MS / 2, staleAt: now + MEMO_MS });

const outcome = (entry: Remembered): ConsentConfigRead =>
  entry.unavailable ? { ok: false } : { ok: true, config: entry.config };

/**
 * The last good copy of a site's configuration in KV, if there is a valid one read under
 * `generation`: a copy from before an invalidation is the policy the marketer has since
 * changed (a category disabled), which must not be enforced as the one in force.
 */
async function lastGoodCopy(
  env: Env,
  siteId: string,
  generation: string,
): Promise<ConsentConfig | undefined> {
  try {
    const copy = await env.EDGE_CACHE.get<{ generation?: unknown; config?: unknown }>(
      lastGoodKey(siteId),
      'json',
    );
    // A copy written before copies carried their generation (a bare configuration) can only
    // be trusted while nothing was ever invalidated.
    const untagged = copy !== null && copy.generation === undefined && generation === '0';
    if (copy?.generation !== generation && !untagged) return undefined;
    const valid = ConsentConfigSchema.safeParse(untagged ? copy : copy?.config);
    return valid.success ? purposesOptional(valid.data) : undefined;
  } catch {
    return undefined;
  }
}

async function loadConsentConfig(env: Env, siteId: string): Promise<ConsentConfigRead> {
  const now = Date.now();
  const from = invalidations;
  const remember = (entry: Remembered) => {
    if (from === invalidations) memo.set(siteId, entry);
  };
  const mine = memo.get(siteId);
  let generation = mine?.generation ?? '0';
  let generationRead = false;
  try {
    generation = await generationOf(env);
    generationRead = true;
    if (mine && !mine.unavailable && mine.generation === generation) {
      remember({ ...mine, ...readAt(now) });
      return { ok: true, config: mine.config };
    }
    const cached = await env.EDGE_CACHE.get<ConsentConfig>(configKey(generation, siteId), 'json');
    const valid = cached === null ? undefined : ConsentConfigSchema.safeParse(cached);
    if (valid?.success) {
      const config = purposesOptional(valid.data);
      remember({ config, ...readAt(now), generation });
      // The isolate that read it from Directus may have failed to record its wording, and
      // after that every read comes from here: recorded (or found recorded) once per isolate,
      // so no consent record names a version whose wording was never kept.
      waitUntil(recordPolicyWording(env, siteId, config));
      return { ok: true, config };
    }
  } catch {
    // KV unavailable: fall through to Directus.
  }
  let config: ConsentConfig;
  try {
    config = await loadFromDirectus(env, siteId);
  } catch (e) {
    // Directus unreachable: the last configuration this isolate knew, else the last good
    // copy in KV, either only if read since the last invalidation (the site's own policy
    // version, which the built-ins are not; an older one the marketer has replaced must not
    // stand in for it). Read again after RETRY_MS, not per request.
    const reason = e instanceof Error ? e.message.slice(0, 200) : 'unknown';
    console.warn(JSON.stringify({ level: 'warn', msg: 'consent_config.directus_unavailable', reason }));
    const held = mine && !mine.unavailable ? mine : undefined;
    // With KV unreadable too, nothing can be confirmed or looked up (not even the last good
    // copy, whose generation is unknown): what this isolate holds stands, as the site's own
    // categories, rather than the built-ins.
    const known = !generationRead
      ? held?.config
      : held && held.generation === generation
        ? held.config
        : await lastGoodCopy(env, siteId, generation);
    // Retried RETRY_MS after this failure, not after the read began: a hung Directus gives up
    // only after DIRECTUS_TIMEOUT_MS, and a retry due at once would keep requests waiting.
    const failedAt = Date.now();
    const retryAt = failedAt + RETRY_MS;
    if (known) {
      // The site's configuration as of KV's generation just read (or, with KV unreadable,
      // the one held): served for MEMO_MS, while reads retry in the background.
      remember({ config: known, refreshAt: retryAt, staleAt: failedAt + MEMO_MS, generation });
      return { ok: true, config: known };
    }
    // Nothing of the site's to serve meanwhile. After a quick failure (Directus refused) the
    // request due to retry waits for it, so a recovered Directus is seen by that very request;
    // after a slow one (Directus hung) the outage answer is served while the retry runs, or
    // every request of the site would wait DIRECTUS_TIMEOUT_MS for as long as the hang lasts.
    const quick = failedAt - now < DIRECTUS_TIMEOUT_MS / 5;
    remember({
      config: DEFAULT_CONSENT_CONFIG,
      refreshAt: retryAt,
      staleAt: quick ? retryAt : Number.POSITIVE_INFINITY,
      generation,
      unavailable: true,
    });
    return { ok: false };
  }
  remember({ config, ...readAt(now), generation });
  // A read overtaken by an invalidation, or made without KV's generation, writes no copies:
  // they would be filed under a generation that is not (or may not be) the current one, and
  // the last good copy of the current one would be overwritten.
  if (from !== invalidations || !generationRead) return { ok: true, config };
  // A KV write that fails (its per-key rate, an outage) does not make a good read a failed one.
  await keepCopies(env, generation, siteId, config).catch(() => undefined);
  return { ok: true, config };
}

/** The KV copies of a site's configuration read under `generation`: for other isolates, and for the next outage. */
function keepCopies(env: Env, generation: string, siteId: string, config: ConsentConfig): Promise<unknown> {
  return Promise.all([
    env.EDGE_CACHE.put(configKey(generation, siteId), JSON.stringify(config), {
      expirationTtl: KV_TTL_SECONDS,
    }),
    env.EDGE_CACHE.put(lastGoodKey(siteId), JSON.stringify({ generation, config })),
  ]);
}

/**
 * Drops every cached consent configuration (the Directus webhook calls this). This isolate
 * forgets at once, whatever KV does; the new generation tells the others. A write KV refuses
 * (two changes within its one write a second to a key) is tried once more a second later:
 * a lost generation would keep the previous configuration in force everywhere for a day.
 */
export async function invalidateConsentConfig(env: Env): Promise<string> {
  return newGeneration(env, async () => undefined);
}

/**
 * Starts a new generation: `fill` writes its copies first (none: every isolate reads
 * Directus again), then the generation key tells the other isolates.
 */
async function newGeneration(env: Env, fill: (generation: string) => Promise<void>): Promise<string> {
  const generation = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
  const forget = () => {
    invalidations++;
    memo.clear();
    inFlight.clear();
  };
  forget();
  try {
    await fill(generation);
    await putChangeMarker(env.EDGE_CACHE, CONSENT_CONFIG_VERSION_KEY, generation);
  } finally {
    // Reads begun while the write was under way may have read the previous generation.
    forget();
  }
  return generation;
}

/** KV key of the configuration the scheduled check last saw in Directus for a site. */
const observedKey = (siteId: string) => `consent-config:observed:${siteId}`;

/**
 * The scheduled check: when what Directus holds for any of `siteIds` changed since the last
 * check, publishes a new generation whose copies are what Directus holds now, as the
 * webhook's invalidation would have (isolates then read those copies from KV, not each
 * Directus). A change whose notice never reached the Worker (it was down or deploying, the
 * Flow failed) would otherwise stay unseen: an isolate keeps its configuration for as long
 * as the generation does not change. A change that did reach it is published once more,
 * which changes nothing (the policy version comes from the categories). Returns the sites
 * whose configuration changed; throws when Directus or KV cannot be read (nothing changes).
 */
export async function reconcileConsentConfig(env: Env, siteIds: readonly string[]): Promise<string[]> {
  const before = await generationOf(env);
  const held: { siteId: string; config: ConsentConfig; text: string }[] = [];
  const changed: string[] = [];
  for (const siteId of siteIds) {
    const config = await loadFromDirectus(env, siteId);
    const text = JSON.stringify(config);
    held.push({ siteId, config, text });
    if ((await env.EDGE_CACHE.get(observedKey(siteId))) !== text) changed.push(siteId);
  }
  if (changed.length === 0) return [];
  // A notice that arrived meanwhile made its own generation, read by isolates from Directus
  // after the change: publishing what this check read earlier would put it back. The next
  // check looks again (nothing was recorded as seen).
  if ((await generationOf(env)) !== before) return [];
  await newGeneration(env, async (generation) => {
    await Promise.all(held.map(({ siteId, config }) => keepCopies(env, generation, siteId, config)));
  });
  // Only once published: a check that failed part-way finds the change again next time.
  await Promise.all(held.map(({ siteId, text }) => env.EDGE_CACHE.put(observedKey(siteId), text)));
  return changed;
}
