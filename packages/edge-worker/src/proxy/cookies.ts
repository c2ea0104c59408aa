/**
 * Attune's first-party cookies in edge-proxy mode.
 *
 * - `attune_aid` — the anonymous id the edge personalizes pages for: the SDK's own id, as
 *   its first-party collects write it (the SDK keeps its id in localStorage and never reads
 *   this cookie). Not HttpOnly. The Worker sets or refreshes it server-side (400 days;
 *   Safari does not cap server-set cookies to 7 days) only when the person's consent grants
 *   a purpose that needs a stored id (analytics or personalization), and expires it when
 *   consent no longer does. A cookie is storage: without such consent none is written.
 *   An id the edge mints for a fresh visitor names no one yet: the SDK's id replaces it at
 *   the first collect.
 * - `attune_consent` — the visitor's choice: URL-encoded JSON
 *   `{"categories":{…},"policyVersion":"…"}`. The edge treats it as a restriction only (a
 *   browser can withdraw a purpose, never grant one the profile does not record), except
 *   that it may let the edge mint a first `attune_aid` for a fresh visitor, when it was made
 *   under the site's policy version in force.
 *
 * - `attune_ended` — digests of the ids the site ended in this browser (its answer through
 *   the proxy deleted or replaced `attune_aid`: a sign-out, an erasure), newest first,
 *   HttpOnly. The SDK's outbox can still hold events of such an id and send them later;
 *   their collect answer must not write the id back, or the edge would personalize the
 *   browser for the person who left. An id listed here is never written again, nor read
 *   from `attune_aid`. Digests, not ids: an anonymous id is enough to ask for its person's
 *   decisions, and the next person at a shared computer must not find it in the cookie.
 *
 * Both are written by the first-party collect (`/attune/collect`) from the newest event of
 * an accepted batch — its anonymous id and the consent it was sent under — so the SDK (which
 * writes no cookie itself) and the edge name the same person with no code on the site.
 *
 * The origin's own cookies pass through the proxy as it set them, but for a `Domain` only
 * the origin's host is in, which is moved to the shop's (`publicSetCookie`).
 */
import { createHash } from 'node:crypto';
import { type ConsentState, ConsentStateSchema, isGranted, LIMITS } from '@attune/shared-schema';

export const ANONYMOUS_ID_COOKIE = 'attune_aid';
export const CONSENT_COOKIE = 'attune_consent';
export const ENDED_IDS_COOKIE = 'attune_ended';
/** As long as the ingest still takes an ended id's events (their age limit, plus clock skew). */
export const ENDED_IDS_MAX_AGE_S = (LIMITS.maxEventAgeMs + LIMITS.maxFutureSkewMs) / 1000;
/** Sign-outs remembered: a few, for a browser that several people used in turn. */
const MAX_ENDED_IDS = 4;
/** Browsers cap cookie lifetimes at 400 days. */
export const ANONYMOUS_ID_MAX_AGE_S = 400 * 24 * 60 * 60;
/** Ids the edge accepts from a cookie: what the SDK makes (UUIDs, ULIDs), nothing that could smuggle markup. */
const ID_PATTERN = /^[A-Za-z0-9_-]{8,128}$/;
/** An `endedDigest`. */
const DIGEST_PATTERN = /^[A-Za-z0-9_-]{22}$/;
const MAX_CATEGORIES = 32;

/** Parses a Cookie header into a map (first value wins, malformed pairs skipped). */
export function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (out.has(name)) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      out.set(name, decodeURIComponent(value));
    } catch {
      // A malformed escape is not ours to repair: skip the cookie.
    }
  }
  return out;
}

/** Whether a consent allows storing the id cookie: only purposes that need a stored id (analytics, personalization) do. */
export function allowsStoredId(consent: ConsentState): boolean {
  return isGranted(consent, 'analytics') || isGranted(consent, 'personalization');
}

/**
 * The anonymous id from the cookie, when it is well-formed and not one the site ended (a
 * collect answer already on its way at sign-out can still have written it back).
 */
export function anonymousIdFrom(cookies: Map<string, string>): string | undefined {
  const value = cookies.get(ANONYMOUS_ID_COOKIE);
  return value !== undefined && ID_PATTERN.test(value) && !isEndedId(value, cookies) ? value : undefined;
}

/** Whether the browser's `attune_aid` holds an id the site ended (to be expired). */
export function holdsEndedId(cookies: Map<string, string>): boolean {
  const value = cookies.get(ANONYMOUS_ID_COOKIE);
  return value !== undefined && isEndedId(value, cookies);
}

/**
 * What `attune_ended` keeps of an id: 128 bits of its SHA-256 (base64url). The ids are
 * random (a ULID or UUID has ≥ 80 random bits), so the digest cannot be turned back into one.
 */
export function endedDigest(id: string): string {
  return createHash('sha256').update(`attune_ended:${id}`).digest('base64url').slice(0, 22);
}

/** The digests of the ids the site ended in this browser, newest first. */
export function endedDigestsFrom(cookies: Map<string, string>): string[] {
  const value = cookies.get(ENDED_IDS_COOKIE);
  if (value === undefined) return [];
  return value
    .split('.')
    .filter((digest) => DIGEST_PATTERN.test(digest))
    .slice(0, MAX_ENDED_IDS);
}

/** Whether the site ended `id` in this browser. */
export function isEndedId(id: string, cookies: Map<string, string>): boolean {
  const digests = endedDigestsFrom(cookies);
  // Most browsers have none: no digest to compute for them.
  return digests.length > 0 && digests.includes(endedDigest(id));
}

/** The Set-Cookie value that adds `id` to the ended ids (the oldest beyond the few kept go). */
export function endedIdsCookie(id: string, cookies: Map<string, string>, secure: boolean): string {
  const digest = endedDigest(id);
  const digests = [digest, ...endedDigestsFrom(cookies).filter((d) => d !== digest)].slice(0, MAX_ENDED_IDS);
  // HttpOnly: nothing in the page needs it, and no script should be able to unlist an id.
  return `${ENDED_IDS_COOKIE}=${digests.join('.')}; Path=/; Max-Age=${ENDED_IDS_MAX_AGE_S}; SameSite=Lax; HttpOnly${secure ? '; Secure' : ''}`;
}

/**
 * Whether the origin's Set-Cookie lines end the browser's anonymous id `id`: they delete
 * `attune_aid` (`Max-Age` ≤ 0, an `Expires` past) or write another value in its place.
 */
export function originEndsId(setCookies: readonly string[], id: string): boolean {
  return setCookies.some((line) => {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0 || pair.slice(0, eq).trim() !== ANONYMOUS_ID_COOKIE) return false;
    if (pair.slice(eq + 1).trim() !== id) return true;
    return attributes.some((attribute) => {
      const at = attribute.indexOf('=');
      const key = attribute
        .slice(0, at < 0 ? undefined : at)
        .trim()
        .toLowerCase();
      const value = at < 0 ? '' : attribute.slice(at + 1).trim();
      return (
        (key === 'max-age' && /^-?\d+$/.test(value) && Number(value) <= 0) ||
        (key === 'expires' && Date.parse(value) <= Date.now())
      );
    });
  });
}

/**
 * An origin's Set-Cookie line with a `Domain` only the origin's host is in moved to the host
 * the browser asked, as nginx's `proxy_cookie_domain` does. The origin is asked on its own
 * host, and a shop that writes its cookies for the host it was asked on (frameworks that
 * derive the domain from the request) named the origin's: a browser rejects a cookie for a
 * domain its page's host is not in, so sign-in or the cart broke behind the Worker. A
 * domain the browser's host is in already reaches it (a parent domain both share), and one
 * neither host is in was never the origin's to set: both are passed on as they are.
 */
export function publicSetCookie(line: string, originHost: string, browserHost: string): string {
  const [pair = '', ...attributes] = line.split(';');
  let moved = false;
  const rewritten = attributes.map((attribute) => {
    const eq = attribute.indexOf('=');
    if (eq < 0 || attribute.slice(0, eq).trim().toLowerCase() !== 'domain') return attribute;
    // A leading dot is ignored (RFC 6265, 5.2.3), and domains compare case-insensitively.
    const domain = attribute
      .slice(eq + 1)
      .trim()
      .replace(/^\./, '')
      .toLowerCase();
    if (domain === '' || inDomain(browserHost, domain) || !inDomain(originHost, domain)) return attribute;
    moved = true;
    return ` Domain=${browserHost}`;
  });
  return moved ? [pair, ...rewritten].join(';') : line;
}

/** Whether a host is in a cookie domain: the domain itself, or a name under it (RFC 6265, 5.1.3). */
function inDomain(host: string, domain: string): boolean {
  const name = host.toLowerCase();
  return name === domain || (name.endsWith(`.${domain}`) && !/^[\d.]+$|:/.test(name));
}

/** Whether a string is an acceptable anonymous id (query parameter or cookie). */
export function isAnonymousId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** The consent state the browser wrote, when present and valid. */
export function consentFrom(cookies: Map<string, string>): ConsentState | undefined {
  const raw = cookies.get(CONSENT_COOKIE);
  if (raw === undefined) return undefined;
  try {
    const parsed = ConsentStateSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The Set-Cookie value that stores (or refreshes) the anonymous id. */
export function anonymousIdCookie(id: string, secure: boolean): string {
  return `${ANONYMOUS_ID_COOKIE}=${id}; Path=/; Max-Age=${ANONYMOUS_ID_MAX_AGE_S}; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** The Set-Cookie value that deletes the anonymous id (consent withdrawn). */
export function expiredAnonymousIdCookie(secure: boolean): string {
  return `${ANONYMOUS_ID_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** The Set-Cookie value that records the visitor's choice (a refusal included: it is what honours it). */
export function consentCookie(consent: ConsentState, secure: boolean): string {
  const value = encodeURIComponent(
    JSON.stringify({ categories: consent.categories, policyVersion: consent.policyVersion }),
  );
  return `${CONSENT_COOKIE}=${value}; Path=/; Max-Age=${ANONYMOUS_ID_MAX_AGE_S}; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/**
 * The browser's anonymous id and consent as the newest event of a collect body states them,
 * leaving out the events the ingest refused (`refused`, by index), or undefined when the body
 * names no well-formed pair.
 */
export function visitorOfBatch(
  body: unknown,
  refused: ReadonlySet<number> = new Set(),
): { anonymousId: string; consent: ConsentState } | undefined {
  const batch = typeof body === 'object' && body !== null ? (body as { batch?: unknown }).batch : undefined;
  if (!Array.isArray(batch)) return undefined;
  for (let i = batch.length - 1; i >= 0; i--) {
    if (refused.has(i)) continue;
    const event: unknown = batch[i];
    if (typeof event !== 'object' || event === null) continue;
    const { anonymousId, context } = event as { anonymousId?: unknown; context?: { consent?: unknown } };
    if (typeof anonymousId !== 'string' || !isAnonymousId(anonymousId)) continue;
    const consent = ConsentStateSchema.safeParse(context?.consent);
    // A site offers at most 32 categories; more would not fit a cookie anyway.
    if (consent.success && Object.keys(consent.data.categories).length <= MAX_CATEGORIES)
      return { anonymousId, consent: consent.data };
  }
  return undefined;
}
