/**
 * Sites: which write key belongs to which site, its allowed origins, identity secret,
 * server key and settings. Read from configuration (the ATTUNE_SITES var and the
 * ATTUNE_SITE_SECRETS secret) now, Directus-managed later; parsed once per isolate.
 */
import { z } from 'zod';

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

/** A site as the edge knows it. `identitySecret` and `serverKey` come from secrets only. */
export interface Site {
  id: string;
  writeKey: string;
  allowedOrigins: string[];
  identitySecret: string;
  serverKey: string;
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

let cached: { sites: string; secrets: string; directory: SiteDirectory } | undefined;

function parseJson(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Builds the site directory from configuration. A site without secrets is skipped (and
 * logged once), because an unsigned identity or a missing server key would be unsafe; so
 * is a site whose id or write key an earlier site already has (one would silently take the
 * other's traffic). Invalid rate limits are logged and the defaults used.
 */
function buildDirectory(sitesText: string, secretsText: string): SiteDirectory {
  const directory: SiteDirectory = { byWriteKey: new Map(), byId: new Map() };
  const rawSites = parseJson(sitesText);
  const rawSecrets = parseJson(secretsText);
  const secrets = z.record(z.string(), SiteSecretSchema).safeParse(rawSecrets ?? {});
  const list = z.array(SiteVarSchema).safeParse(rawSites ?? []);
  if (!list.success || !secrets.success) {
    console.error(JSON.stringify({ level: 'error', msg: 'site configuration unreadable' }));
    return directory;
  }
  for (const s of list.data) {
    const secret = Object.hasOwn(secrets.data, s.id) ? secrets.data[s.id] : undefined;
    if (!secret) {
      console.error(JSON.stringify({ level: 'error', msg: 'site has no secrets; skipped', siteId: s.id }));
      continue;
    }
    if (directory.byId.has(s.id) || directory.byWriteKey.has(s.writeKey)) {
      const field = directory.byId.has(s.id) ? 'id' : 'writeKey';
      console.error(
        JSON.stringify({
          level: 'error',
          msg: `site ${field} is already taken by an earlier site; skipped`,
          siteId: s.id,
        }),
      );
      continue;
    }
    const rate = RateLimitSchema.safeParse(s.settings.rateLimit ?? {});
    if (!rate.success) {
      const issue = rate.error.issues[0];
      console.error(
        JSON.stringify({
          level: 'error',
          msg: `site settings.rateLimit.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}; the defaults apply`,
          siteId: s.id,
        }),
      );
    }
    const site: Site = {
      id: s.id,
      writeKey: s.writeKey,
      allowedOrigins: s.allowedOrigins,
      identitySecret: secret.identitySecret,
      serverKey: secret.serverKey,
      settings: { ...s.settings, rateLimit: { ...DEFAULT_RATE_LIMIT, ...(rate.success ? rate.data : {}) } },
    };
    directory.byWriteKey.set(site.writeKey, site);
    directory.byId.set(site.id, site);
  }
  return directory;
}

function directoryFor(env: Env): SiteDirectory {
  const sites: string = env.ATTUNE_SITES;
  const secrets: string = env.ATTUNE_SITE_SECRETS ?? '';
  if (cached?.sites !== sites || cached.secrets !== secrets) {
    cached = { sites, secrets, directory: buildDirectory(sites, secrets) };
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
