/**
 * Authentication of operators (admin token), of a site's privacy requests (its privacy
 * token) and of server-side producers (a site's server key).
 */
import { timingSafeEqualText } from '../identity/index.ts';
import { logOnce } from '../observability/index.ts';
import { listSites, type Site } from '../sites/index.ts';

/**
 * An ADMIN_TOKEN shorter than this authorizes nothing: unset, or a placeholder such as the
 * example file's `change-me`, with which anyone could read and erase every site's people.
 */
export const MIN_ADMIN_TOKEN_CHARS = 16;

/** The credentials of an `Authorization` header in `scheme` (schemes are case-insensitive, RFC 9110). */
function credentialsOf(authorization: string | null | undefined, scheme: string): string | undefined {
  if (typeof authorization !== 'string') return undefined;
  const space = authorization.indexOf(' ');
  if (space < 0 || authorization.slice(0, space).toLowerCase() !== scheme) return undefined;
  return authorization.slice(space + 1).trim();
}

/**
 * Whether `Authorization: Bearer <token>` carries the admin token (constant-time). A token
 * under MIN_ADMIN_TOKEN_CHARS matches nothing.
 */
export function isAdmin(env: Env, authorization: string | null | undefined): boolean {
  const token = env.ADMIN_TOKEN ?? '';
  if (token.length < MIN_ADMIN_TOKEN_CHARS) {
    reportWeakAdminToken(token);
    return false;
  }
  return bearerIs(authorization, token);
}

function reportWeakAdminToken(token: string): void {
  logOnce(
    `ADMIN_TOKEN:${token}`,
    'error',
    `ADMIN_TOKEN is ${token === '' ? 'unset' : `shorter than ${MIN_ADMIN_TOKEN_CHARS} characters (a placeholder?)`}: every admin request is refused with 401 and the people routes take only a site's privacy token (set a long random token: wrangler secret put ADMIN_TOKEN)`,
  );
}

/**
 * Whether `Authorization: Bearer <token>` may act on `site`'s people: the admin token, or
 * that site's own privacy token (constant-time; never another site's).
 */
export function mayActOnPeopleOf(
  env: Env,
  site: Site | undefined,
  authorization: string | null | undefined,
): boolean {
  const admin = isAdmin(env, authorization);
  const own = site !== undefined && bearerIs(authorization, site.privacyToken);
  return admin || own;
}

function bearerIs(authorization: string | null | undefined, token: string | undefined): boolean {
  const presented = credentialsOf(authorization, 'bearer');
  if (typeof token !== 'string' || token === '' || presented === undefined) return false;
  return timingSafeEqualText(presented, token);
}

/** The username of HTTP Basic auth (Segment libraries send the key as username, empty password). */
export function basicUsername(authorization: string | null | undefined): string | undefined {
  const credentials = credentialsOf(authorization, 'basic');
  if (credentials === undefined) return undefined;
  try {
    // UTF-8, as RFC 7617 says clients should send it (atob alone gives Latin-1).
    const decoded = new TextDecoder().decode(Uint8Array.from(atob(credentials), (c) => c.charCodeAt(0)));
    // Segment libraries send `key:` (an empty password): everything before that last colon is
    // the key, even a key with a colon in it; `user:password` keeps its first part.
    if (decoded.endsWith(':')) return decoded.slice(0, -1);
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(0, colon) : decoded;
  } catch {
    return undefined;
  }
}

/** The site whose server key the request's Basic auth carries, compared in constant time. */
export async function siteByServerKey(
  env: Env,
  authorization: string | null | undefined,
): Promise<Site | undefined> {
  const key = basicUsername(authorization);
  return key === undefined ? undefined : siteOfServerKey(env, key);
}

/**
 * The site whose server key `key` is, compared in constant time. Only server keys match:
 * a browser write key is public, so it never authenticates a server producer.
 */
export async function siteOfServerKey(env: Env, key: string): Promise<Site | undefined> {
  if (key === '') return undefined;
  let found: Site | undefined;
  for (const site of await listSites(env)) {
    // Compare with every site so timing does not reveal which one matched. A site whose
    // configured key is too short to be secret has none (sites/index.ts).
    if (site.serverKey !== undefined && timingSafeEqualText(key, site.serverKey)) found = site;
  }
  return found;
}

/**
 * The site whose privacy token `Authorization: Bearer <token>` carries, compared in
 * constant time with every site's: what tells a caller holding a real token that only
 * `?site` is wrong, while any other caller learns nothing about which sites exist.
 */
export async function siteOfPrivacyToken(
  env: Env,
  authorization: string | null | undefined,
): Promise<Site | undefined> {
  let found: Site | undefined;
  for (const site of await listSites(env)) {
    if (bearerIs(authorization, site.privacyToken)) found = site;
  }
  return found;
}
