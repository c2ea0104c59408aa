/**
 * Sites: which write key belongs to which site, its allowed origins, identity secret,
 * server key and settings. Read from configuration (the ATTUNE_SITES var and the
 * ATTUNE_SITE_SECRETS secret) now, Directus-managed later; parsed once per isolate.
 */
import { z } from 'zod';
import { log } from '../observability/index.ts';

/** Per-site rate limits: token buckets refilled per second, with a burst size. */
export interface RateLimitSettings {
  ipPerSecond: number;
  ipBurst: number;
  anonymousPerSecond: number;
  anonymousBurst: number;
}

export interface SiteSettings {
  rateLimit: RateLimitSettings;
  [key: string]: unknown;
}

/** A site as the edge knows it. `identitySecret`, `serverKey` and `privacyToken` come from secrets only. */
export interface Site {
  id: string;
  writeKey: string;
  allowedOrigins: string[];
  identitySecret: string;
  serverKey: string;
  /**
   * The site's own token for its people routes (access and erasure of its people, no other
   * site's, no operator route): what a shop's server holds instead of the Worker's ADMIN_TOKEN.
   */
  privacyToken?: string;
  settings: SiteSettings;
}

export const DEFAULT_RATE_LIMIT: RateLimitSettings = {
  ipPerSecond: 50,
  ipBurst: 200,
  anonymousPerSecond: 5,
  anonymousBurst: 40,
};

const SiteVarSchema = z.object({
  id: z.string().min(1).max(64),
  writeKey: z.string().min(1).max(128),
  allowedOrigins: z.array(z.string().max(256)).max(100).default([]),
  settings: z.looseObject({}).default({}),
});
const SiteSecretSchema = z.object({
  identitySecret: z.string().min(1),
  serverKey: z.string().min(1),
  // Checked site by site (grantPrivacyTokens): one bad token must not fail every site's secrets.
  privacyToken: z.unknown().optional(),
});
// A bucket holds whole requests: a burst below 1 could never grant one (every request a 429).
const RateLimitSchema = z
  .object({
    ipPerSecond: z.number().positive(),
    ipBurst: z.number().min(1),
    anonymousPerSecond: z.number().positive(),
    anonymousBurst: z.number().min(1),
  })
  .partial();

interface SiteDirectory {
  byWriteKey: Map<string, Site>;
  byId: Map<string, Site>;
}

let cached: { inputs: readonly (string | undefined)[]; directory: SiteDirectory } | undefined;

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * An allowed origin as browsers send the Origin header: `https://shop.example/` or
 * `HTTPS://Shop.Example` would otherwise never match, and every request of the site would
 * be a 403. An entry with a path is taken as its origin, and logged; an entry that is not
 * an http(s) URL is kept as written (an exact match only).
 */
function normalizeOrigin(entry: string, siteId: string): string {
  let url: URL;
  try {
    url = new URL(entry.trim());
  } catch {
    return entry;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return entry;
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '')
    log(
      'error',
      `site allowedOrigins entry ${entry.slice(0, 256)} is not an origin; ${url.origin} is used (an Origin header has no path)`,
      { siteId },
    );
  return url.origin;
}

/**
 * Builds the site directory from configuration. A site without secrets is skipped (and
 * logged once), because an unsigned identity or a missing server key would be unsafe; so
 * is a site whose id, write key or server key an earlier site already has (one would
 * silently take the other's traffic), and a site whose server key equals a write key (write
 * keys are public: anyone could send trusted events with unsigned user ids). Invalid rate
 * limits are logged and the defaults used.
 */
function buildDirectory(
  sitesText: string,
  secretsText: string,
  workerSecrets: ReadonlySet<string>,
): SiteDirectory {
  const directory: SiteDirectory = { byWriteKey: new Map(), byId: new Map() };
  const rawSites = parseJson(sitesText);
  const rawSecrets = parseJson(secretsText);
  const secrets = z.record(z.string(), SiteSecretSchema).safeParse(rawSecrets ?? {});
  const list = z.array(SiteVarSchema).safeParse(rawSites ?? []);
  if (!list.success || !secrets.success) {
    log('error', 'site configuration unreadable');
    return directory;
  }
  const writeKeys = new Set(list.data.map((s) => s.writeKey));
  const serverKeys = new Set<string>();
  for (const s of list.data) {
    const secret = Object.hasOwn(secrets.data, s.id) ? secrets.data[s.id] : undefined;
    if (!secret) {
      log('error', 'site has no secrets; skipped', { siteId: s.id });
      continue;
    }
    const taken = directory.byId.has(s.id)
      ? 'id'
      : directory.byWriteKey.has(s.writeKey)
        ? 'writeKey'
        : serverKeys.has(secret.serverKey)
          ? 'serverKey'
          : undefined;
    if (taken !== undefined) {
      log('error', `site ${taken} is already taken by an earlier site; skipped`, { siteId: s.id });
      continue;
    }
    if (writeKeys.has(secret.serverKey)) {
      log(
        'error',
        'site serverKey equals a write key, which is public; skipped (give it a secret key of its own)',
        { siteId: s.id },
      );
      continue;
    }
    const rate = RateLimitSchema.safeParse(s.settings.rateLimit ?? {});
    if (!rate.success) {
      const issue = rate.error.issues[0];
      log(
        'error',
        `site settings.rateLimit.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}; the defaults apply`,
        { siteId: s.id },
      );
    }
    const site: Site = {
      id: s.id,
      writeKey: s.writeKey,
      allowedOrigins: s.allowedOrigins.map((o) => normalizeOrigin(o, s.id)),
      identitySecret: secret.identitySecret,
      serverKey: secret.serverKey,
      settings: { ...s.settings, rateLimit: { ...DEFAULT_RATE_LIMIT, ...(rate.success ? rate.data : {}) } },
    };
    directory.byWriteKey.set(site.writeKey, site);
    directory.byId.set(site.id, site);
    serverKeys.add(site.serverKey);
  }
  grantPrivacyTokens(directory, secrets.data, writeKeys, workerSecrets);
  return directory;
}

/** A privacy token shorter than this is not taken (a placeholder, or guessable). */
const MIN_PRIVACY_TOKEN_CHARS = 16;

/**
 * Gives each site its privacy token, unless the token is not a string, short, public (a
 * write key), a site's server key or identity secret, one of the Worker's own secrets (its
 * admin token reaches every site; its Directus token and hook secret would be handed to a
 * shop), or another site's token too: then it
 * is not taken, with a log line saying why, and the site keeps working without it (its
 * people routes answer only the admin token). One bad token never takes the other sites
 * down.
 */
function grantPrivacyTokens(
  directory: SiteDirectory,
  secrets: Record<string, { serverKey: string; privacyToken?: unknown }>,
  writeKeys: ReadonlySet<string>,
  workerSecrets: ReadonlySet<string>,
): void {
  const sites = [...directory.byId.values()];
  // A site's other secrets: its server can sign user ids or send server events with them.
  const siteSecrets = new Set(sites.flatMap((site) => [site.serverKey, site.identitySecret]));
  const tokenOf = (site: Site) =>
    Object.hasOwn(secrets, site.id) ? secrets[site.id]?.privacyToken : undefined;
  const tokens = sites.flatMap((site) => tokenOf(site) ?? []);
  for (const site of sites) {
    const token = tokenOf(site);
    if (token === undefined) continue;
    const problem =
      typeof token !== 'string'
        ? 'not a string'
        : token.length < MIN_PRIVACY_TOKEN_CHARS
          ? `shorter than ${MIN_PRIVACY_TOKEN_CHARS} characters`
          : writeKeys.has(token)
            ? 'a write key, which is public'
            : siteSecrets.has(token)
              ? "a site's server key or identity secret"
              : workerSecrets.has(token)
                ? "one of the Worker's own secrets (ADMIN_TOKEN, DIRECTUS_TOKEN or HOOK_SECRET)"
                : tokens.filter((other) => other === token).length > 1
                  ? "another site's privacy token too"
                  : undefined;
    if (problem === undefined && typeof token === 'string') site.privacyToken = token;
    else
      log('error', `site privacyToken is ${problem}; not taken (give it a secret token of its own)`, {
        siteId: site.id,
      });
  }
}

function directoryFor(env: Env): SiteDirectory {
  // The Worker's own secrets are inputs too: no site's privacy token may be one of them.
  const inputs = [
    env.ATTUNE_SITES,
    env.ATTUNE_SITE_SECRETS,
    env.ADMIN_TOKEN,
    env.DIRECTUS_TOKEN,
    env.HOOK_SECRET,
  ] as const;
  // Read on every request: compared field by field, with no per-request allocation but this array.
  if (cached === undefined || inputs.some((input, i) => input !== cached?.inputs[i])) {
    const [sites, secrets, ...own] = inputs;
    const workerSecrets = new Set(own.filter((secret) => typeof secret === 'string' && secret !== ''));
    cached = { inputs, directory: buildDirectory(sites, secrets ?? '', workerSecrets) };
  }
  return cached.directory;
}

/** The site a (public) write key belongs to, or undefined. */
export async function getSiteByWriteKey(env: Env, writeKey: string): Promise<Site | undefined> {
  return directoryFor(env).byWriteKey.get(writeKey);
}

/** The site with this id, or undefined. */
export async function getSiteById(env: Env, siteId: string): Promise<Site | undefined> {
  return directoryFor(env).byId.get(siteId);
}

/** Every configured site. */
export async function listSites(env: Env): Promise<Site[]> {
  return [...directoryFor(env).byId.values()];
}

/** Whether a request's Origin may send events for (and read answers of) a site. */
export function isOriginAllowed(site: Site, origin: string | undefined): boolean {
  return origin !== undefined && site.allowedOrigins.includes(origin);
}
