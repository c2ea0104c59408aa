/**
 * Sites: which write key belongs to which site, its allowed origins, identity secret,
 * server key and settings. Read from configuration (the ATTUNE_SITES var and the
 * ATTUNE_SITE_SECRETS secret) now, Directus-managed later; parsed once per isolate.
 */
import { z } from 'zod';
import { MIN_IDENTITY_SECRET_CHARS, type SignatureForm } from '../identity/index.ts';
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
  /**
   * Verifies signed user ids (see identity/index.ts: one under MIN_IDENTITY_SECRET_CHARS
   * verifies nothing) and salts the rate limiter's pseudonymous IP keys (one that short
   * salts nothing, see identity/ip-pseudonym.ts).
   */
  identitySecret: string;
  /** The form of signature the site's backend makes (`settings.identity.signatures`; see identity/index.ts). */
  signatures: SignatureForm;
  /**
   * What the site's server producers send as Basic username. Absent when the configured one
   * is shorter than MIN_SERVER_KEY_CHARS: then no request is trusted as the site's server.
   */
  serverKey?: string;
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

/**
 * A site id is joined into keys with what follows it: `<site>/<person key>` (a ProfileDO),
 * `<site>:<person key>` (a Directus people row), `ip:<site>:…` (a rate bucket). With a `/` or
 * `:` in it, one site's keys could be another's (beside site `shop`, site `shop/anon:x`'s
 * person `anon:y` is the object a browser of `shop` reaches with the anonymous id `x/anon:y`):
 * letters, digits, `.`, `_` and `-` only.
 */
const SITE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const SiteVarSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .regex(
      SITE_ID_PATTERN,
      'letters, digits, ".", "_" and "-" only (a site id is part of every key of its people)',
    ),
  writeKey: z.string().min(1).max(128),
  allowedOrigins: z.array(z.string().max(256)).max(100).default([]),
  settings: z.looseObject({}).default({}),
});
// Any string: one too short to use is not a reason to drop the site (see buildDirectory).
const SiteSecretSchema = z.object({
  identitySecret: z.string(),
  serverKey: z.string(),
  // Checked site by site (grantPrivacyTokens): one bad token must not fail every site's secrets.
  privacyToken: z.unknown().optional(),
});
type SiteSecrets = z.infer<typeof SiteSecretSchema>;

/**
 * A server key shorter than this authenticates nothing: a placeholder (the example file's
 * `sk_change_me`) or a guessable key would let anyone send trusted events with unsigned
 * user ids.
 */
export const MIN_SERVER_KEY_CHARS = 16;
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

type JsonRead = { ok: true; value: unknown } | { ok: false; problem: string };

/**
 * Parses a configuration variable. The problem named on failure is the parser's message for
 * ATTUNE_SITES (plain configuration) but only the position for a secret: V8's message quotes
 * the text around the mistake, which would put secret values in the log.
 */
function readJson(text: string, secret: boolean): JsonRead {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (!secret) return { ok: false, problem: message.slice(0, 300) };
    const position = /position (\d+)/.exec(message)?.[1];
    return {
      ok: false,
      problem: position === undefined ? 'a syntax error' : `a syntax error at position ${position}`,
    };
  }
}

/** The first zod issue as `<where>.<path>: <message>` (zod's messages name types and sizes, never values). */
function firstIssue(error: z.ZodError, where: string): string {
  const issue = error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  return `${where}${path === '' ? '' : `.${path}`}: ${issue?.message ?? 'invalid'}`;
}

/** A site id for log fields, from an entry that may not be valid. */
function idOf(entry: unknown): string | undefined {
  if (entry === null || typeof entry !== 'object' || !('id' in entry)) return undefined;
  return typeof entry.id === 'string' ? entry.id.slice(0, 64) : undefined;
}

/**
 * An allowed origin as browsers send the Origin header: `https://shop.example/` or
 * `HTTPS://Shop.Example` would otherwise never match, and every request of the site would
 * be a 403. An entry with a path is taken as its origin, and logged; another scheme with a
 * host (an app's `capacitor://localhost`) is kept as written (an exact match only). An entry
 * naming no origin is not taken, and logged: `null` (any page can send `Origin: null`, from a
 * sandboxed iframe or a data: URL, and would then read the answers), `*`, a bare host.
 */
function normalizeOrigin(entry: string, siteId: string): string | undefined {
  let url: URL | undefined;
  try {
    url = new URL(entry.trim());
  } catch {
    url = undefined;
  }
  if (url === undefined || url.host === '') {
    const why =
      entry.trim().toLowerCase() === 'null'
        ? 'browsers send Origin: null from sandboxed iframes and data: or file: pages, which any site can open'
        : 'it names no origin (no wildcard is taken)';
    log(
      'error',
      `site allowedOrigins entry ${entry.slice(0, 256)} is not taken: ${why}; list each origin of the site's pages as https://host[:port]`,
      { siteId },
    );
    return undefined;
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

/** What ATTUNE_SITES lists: its valid sites, and the id of every entry, valid or not. */
interface SiteList {
  sites: z.infer<typeof SiteVarSchema>[];
  ids: Set<string>;
}

/**
 * The sites of ATTUNE_SITES, each validated on its own: one bad entry is skipped and logged,
 * naming the field, and the others are served. Every mistake is logged, since each one
 * otherwise shows only as every request of a site answered 401 "unknown write key".
 * Undefined when the variable cannot be read at all.
 */
function readSiteList(sitesText: string | undefined): SiteList | undefined {
  if (sitesText === undefined || sitesText.trim() === '') {
    log('error', 'ATTUNE_SITES is unset: no site is served (every request is 401 "unknown write key")');
    return undefined;
  }
  const read = readJson(sitesText, false);
  if (!read.ok) {
    log('error', `ATTUNE_SITES is not valid JSON (${read.problem}): no site is served`);
    return undefined;
  }
  if (!Array.isArray(read.value)) {
    log('error', 'ATTUNE_SITES is not a JSON array of sites ([{"id", "writeKey", …}]): no site is served');
    return undefined;
  }
  const list: SiteList = { sites: [], ids: new Set() };
  read.value.forEach((entry: unknown, index) => {
    const siteId = idOf(entry);
    if (siteId !== undefined) list.ids.add(siteId);
    const parsed = SiteVarSchema.safeParse(entry);
    if (parsed.success) list.sites.push(parsed.data);
    else
      log('error', `${firstIssue(parsed.error, `ATTUNE_SITES[${index}]`)}; site skipped`, {
        ...(siteId !== undefined && { siteId }),
      });
  });
  return list;
}

/** Each site's secrets, and the sites whose secrets are there but invalid (logged already). */
interface SecretsBySite {
  valid: Map<string, SiteSecrets>;
  invalid: Set<string>;
}

/**
 * The secrets of ATTUNE_SITE_SECRETS by site id, each site's validated on its own (a site
 * whose secrets are invalid is skipped, the others are served). Undefined when the variable
 * cannot be read at all; logged either way, never with a value.
 */
function readSiteSecrets(secretsText: string, listed: ReadonlySet<string>): SecretsBySite | undefined {
  const secrets: SecretsBySite = { valid: new Map(), invalid: new Set() };
  if (secretsText.trim() === '') return secrets;
  const read = readJson(secretsText, true);
  if (!read.ok) {
    log('error', `ATTUNE_SITE_SECRETS is not valid JSON (${read.problem}): no site is served`);
    return undefined;
  }
  if (read.value === null || typeof read.value !== 'object' || Array.isArray(read.value)) {
    log(
      'error',
      'ATTUNE_SITE_SECRETS is not a JSON object ({"<site id>": {"identitySecret", "serverKey", "privacyToken"?}}): no site is served',
    );
    return undefined;
  }
  for (const [siteId, entry] of Object.entries(read.value)) {
    if (!listed.has(siteId)) {
      // Not a secret: the id of a site whose secrets would otherwise be silently unused (a typo).
      log('error', 'ATTUNE_SITE_SECRETS has secrets for a site ATTUNE_SITES does not list; unused', {
        siteId: siteId.slice(0, 64),
      });
      continue;
    }
    const parsed = SiteSecretSchema.safeParse(entry);
    if (parsed.success) secrets.valid.set(siteId, parsed.data);
    else {
      secrets.invalid.add(siteId);
      log('error', `${firstIssue(parsed.error, `ATTUNE_SITE_SECRETS.${siteId}`)}; site skipped`, { siteId });
    }
  }
  return secrets;
}

/**
 * Builds the site directory from configuration (once per isolate and configuration: every
 * line logged here is logged once). A site without valid secrets is skipped, because an
 * unsigned identity or a missing server key would be unsafe; so is a site whose id, write
 * key or server key an earlier site already has (one would silently take the other's
 * traffic), and a site whose server key equals a write key (write keys are public: anyone
 * could send trusted events with unsigned user ids). An identity secret or server key too
 * short to be secret is not a reason to skip the site (its browsers' anonymous traffic is
 * still served): that secret is simply not honoured, and logged; so is an identity secret
 * that is not the site's own (foreignIdentitySecret). Invalid rate limits are logged and the
 * defaults used.
 */
function buildDirectory(
  sitesText: string | undefined,
  secretsText: string,
  workerSecrets: ReadonlySet<string>,
): SiteDirectory {
  const directory: SiteDirectory = { byWriteKey: new Map(), byId: new Map() };
  const list = readSiteList(sitesText);
  if (list === undefined) return directory;
  const secrets = readSiteSecrets(secretsText, list.ids);
  if (secrets === undefined) return directory;
  const writeKeys = new Set(list.sites.map((s) => s.writeKey));
  const serverKeys = new Set<string>();
  for (const s of list.sites) {
    const secret = secrets.valid.get(s.id);
    if (!secret) {
      if (!secrets.invalid.has(s.id))
        log('error', 'site has no secrets in ATTUNE_SITE_SECRETS; skipped', { siteId: s.id });
      continue;
    }
    // A short key authenticates nothing, so it cannot take another site's traffic either.
    const serverKey = secret.serverKey.length >= MIN_SERVER_KEY_CHARS ? secret.serverKey : undefined;
    const taken = directory.byId.has(s.id)
      ? 'id'
      : directory.byWriteKey.has(s.writeKey)
        ? 'writeKey'
        : serverKey !== undefined && serverKeys.has(serverKey)
          ? 'serverKey'
          : undefined;
    if (taken !== undefined) {
      log('error', `site ${taken} is already taken by an earlier site; skipped`, { siteId: s.id });
      continue;
    }
    if (serverKey !== undefined && writeKeys.has(serverKey)) {
      log(
        'error',
        'site serverKey equals a write key, which is public; skipped (give it a secret key of its own)',
        { siteId: s.id },
      );
      continue;
    }
    if (serverKey === undefined)
      log(
        'error',
        `site serverKey is shorter than ${MIN_SERVER_KEY_CHARS} characters (a placeholder?): no request is trusted as the site's server (its server producers are refused) until it is a long random key; the site's browser traffic is served`,
        { siteId: s.id },
      );
    if (secret.identitySecret.length < MIN_IDENTITY_SECRET_CHARS)
      log(
        'error',
        `site identitySecret is shorter than ${MIN_IDENTITY_SECRET_CHARS} characters (a placeholder?): no user id signed with it is taken (such events are refused, decisions are anonymous) until it is a long random secret; the site's anonymous traffic is served`,
        { siteId: s.id },
      );
    const notOwn = foreignIdentitySecret(
      secret.identitySecret,
      s.id,
      list.sites,
      secrets.valid,
      workerSecrets,
    );
    if (notOwn !== undefined)
      log(
        'error',
        `site identitySecret is ${notOwn}: no user id signed with it is taken (such events are refused, decisions are anonymous) until the site has a long random secret of its own; the site's anonymous traffic is served`,
        { siteId: s.id },
      );
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
      allowedOrigins: s.allowedOrigins.flatMap((o) => normalizeOrigin(o, s.id) ?? []),
      // Not its own: verifies nothing, as a short one does (identity/index.ts).
      identitySecret: notOwn === undefined ? secret.identitySecret : '',
      signatures: signatureForm(s.id, s.settings.identity),
      ...(serverKey !== undefined && { serverKey }),
      settings: { ...s.settings, rateLimit: { ...DEFAULT_RATE_LIMIT, ...(rate.success ? rate.data : {}) } },
    };
    directory.byWriteKey.set(site.writeKey, site);
    directory.byId.set(site.id, site);
    if (serverKey !== undefined) serverKeys.add(serverKey);
  }
  grantPrivacyTokens(directory, secrets.valid, writeKeys, workerSecrets);
  return directory;
}

/**
 * Why a site's identity secret is not its own, or undefined when it is (or is too short to
 * matter: that is logged on its own). A signature names a user id, not a site: with a secret
 * two sites share, the user id one shop signed (`jane@example.com`, registered there by
 * anyone) signs that person in on the other; with a write key (public: every page of its site
 * carries it) anyone signs in as anyone; with a server key or one of the Worker's own secrets,
 * whoever holds that (another shop's server, Directus's environment) does.
 */
function foreignIdentitySecret(
  identitySecret: string,
  siteId: string,
  sites: readonly { id: string; writeKey: string }[],
  secrets: ReadonlyMap<string, SiteSecrets>,
  workerSecrets: ReadonlySet<string>,
): string | undefined {
  if (identitySecret.length < MIN_IDENTITY_SECRET_CHARS) return undefined;
  if (sites.some((site) => site.writeKey === identitySecret)) return 'a write key, which is public';
  const others = sites.filter((site) => site.id !== siteId).map((site) => secrets.get(site.id));
  if (others.some((other) => other?.identitySecret === identitySecret))
    return "another site's identity secret too";
  if (sites.some((site) => secrets.get(site.id)?.serverKey === identitySecret)) return "a site's server key";
  if (workerSecrets.has(identitySecret))
    return "one of the Worker's own secrets (ADMIN_TOKEN, DIRECTUS_TOKEN or HOOK_SECRET)";
  return undefined;
}

/**
 * The signature form of `settings.identity.signatures`: `plain` when `identity` is unset.
 * Anything else (a misspelt value or key, `identity` not an object) is logged and read as
 * `expiring`, the stricter form: a site that meant to turn expiry on and misspelt it must not
 * be left taking signatures that never expire.
 */
function signatureForm(siteId: string, identity: unknown): SignatureForm {
  if (identity === undefined) return 'plain';
  const value =
    identity !== null && typeof identity === 'object' && 'signatures' in identity
      ? identity.signatures
      : undefined;
  if (value === 'plain' || value === 'bound') return value;
  if (value !== 'expiring')
    log(
      'error',
      'site settings.identity.signatures must be plain, expiring or bound; taken as expiring (then a signature that never expires names no one)',
      { siteId },
    );
  return 'expiring';
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
  secrets: ReadonlyMap<string, SiteSecrets>,
  writeKeys: ReadonlySet<string>,
  workerSecrets: ReadonlySet<string>,
): void {
  const sites = [...directory.byId.values()];
  // A site's other secrets: its server can sign user ids or send server events with them
  // (as configured: one the directory does not honour is still held by that server).
  const siteSecrets = new Set(
    sites.flatMap((site) => {
      const own = secrets.get(site.id);
      return own === undefined ? [] : [own.serverKey, own.identitySecret];
    }),
  );
  const tokenOf = (site: Site) => secrets.get(site.id)?.privacyToken;
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

/**
 * Whether rows that name no site (an `orders` row a shop's backend wrote without `site_id`,
 * which the order Flow sends as its own site's) are this site's: only when it is the one
 * site the Worker serves; with several, such a row could be any of theirs.
 */
export async function ownsUnsitedRows(env: Env, siteId: string): Promise<boolean> {
  const sites = directoryFor(env).byId;
  return sites.size === 1 && sites.has(siteId);
}

/** Whether a request's Origin may send events for (and read answers of) a site. */
export function isOriginAllowed(site: Site, origin: string | undefined): boolean {
  return origin !== undefined && site.allowedOrigins.includes(origin);
}
