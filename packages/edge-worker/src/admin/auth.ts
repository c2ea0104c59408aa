/** Authentication of operators (admin token) and server-side producers (a site's server key). */
import { timingSafeEqualText } from '../identity/index.ts';
import { listSites, type Site } from '../sites/index.ts';

/** Whether `Authorization: Bearer <token>` carries the admin token (constant-time). */
export function isAdmin(env: Env, authorization: string | null | undefined): boolean {
  const token = env.ADMIN_TOKEN;
  if (typeof token !== 'string' || token === '' || !authorization?.startsWith('Bearer ')) return false;
  return timingSafeEqualText(authorization.slice('Bearer '.length).trim(), token);
}

/** The username of HTTP Basic auth (Segment libraries send the key as username, empty password). */
export function basicUsername(authorization: string | null | undefined): string | undefined {
  if (!authorization?.startsWith('Basic ')) return undefined;
  try {
    const decoded = atob(authorization.slice('Basic '.length).trim());
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
  if (key === undefined || key === '') return undefined;
  let found: Site | undefined;
  for (const site of await listSites(env)) {
    // Compare with every site so timing does not reveal which one matched.
    if (timingSafeEqualText(key, site.serverKey)) found = site;
  }
  return found;
}
