/**
 * Enrichment, kept apart from business logic: what the edge derives from a request
 * (device, browser and OS from the User-Agent, place from `request.cf`, receive time and
 * clock-skew correction, and what an event's page URL says: its path, query and campaign).
 * The raw User-Agent and the IP address are never stored.
 */
import {
  type CustomerAction,
  clipText,
  type Enrichment,
  type EventContext,
  LIMITS,
} from '@attune/shared-schema';

/** What the request tells about every event in it, computed once per request. */
export interface RequestFacts {
  receivedAt: number;
  /** `receivedAt` as ISO 8601, made once per request (every event of it carries the same). */
  receivedAtIso: string;
  /** Client clock minus server clock, from the batch's `sentAt` (0 when absent or absurd). */
  skewMs: number;
  device: NonNullable<Enrichment['device']>;
  browser?: string;
  os?: string;
  country?: string;
  region?: string;
  city?: string;
}

const BOT =
  /bot|crawler|spider|crawling|headless|lighthouse|slurp|facebookexternalhit|curl|wget|python-requests/i;

/** Device, browser and OS families from a User-Agent; coarse on purpose (no versions, no fingerprint). */
export function parseUserAgent(ua: string | undefined): Pick<RequestFacts, 'device' | 'browser' | 'os'> {
  if (ua === undefined || ua === '') return { device: 'unknown' };
  const text = ua.slice(0, 512);
  const out: Pick<RequestFacts, 'device' | 'browser' | 'os'> = { device: 'desktop' };
  if (BOT.test(text)) out.device = 'bot';
  else if (
    /iPad|Tablet|Nexus (7|9|10)|SM-T\d|Kindle|Silk/i.test(text) ||
    (/Android/i.test(text) && !/Mobile/i.test(text))
  )
    out.device = 'tablet';
  else if (/Mobi|iPhone|iPod|Android.*Mobile|Windows Phone/i.test(text)) out.device = 'mobile';

  if (/Windows NT/i.test(text)) out.os = 'Windows';
  else if (/iPhone|iPad|iPod/i.test(text)) out.os = 'iOS';
  else if (/Android/i.test(text)) out.os = 'Android';
  else if (/CrOS/i.test(text)) out.os = 'ChromeOS';
  else if (/Mac OS X|Macintosh/i.test(text)) out.os = 'macOS';
  else if (/Linux/i.test(text)) out.os = 'Linux';

  if (/Edg\//i.test(text)) out.browser = 'Edge';
  else if (/OPR\/|Opera/i.test(text)) out.browser = 'Opera';
  else if (/SamsungBrowser/i.test(text)) out.browser = 'Samsung Internet';
  else if (/Firefox\/|FxiOS/i.test(text)) out.browser = 'Firefox';
  else if (/Chrome\/|CriOS|Chromium/i.test(text)) out.browser = 'Chrome';
  else if (/Safari\//i.test(text)) out.browser = 'Safari';
  return out;
}

function cfString(cf: unknown, key: string): string | undefined {
  if (cf === null || typeof cf !== 'object') return undefined;
  const value = (cf as Record<string, unknown>)[key];
  return typeof value === 'string' && value.length > 0 && value.length <= 64 ? value : undefined;
}

/** Facts of one request: place from `request.cf`, UA families, receive time and clock skew. */
export function requestFacts(
  request: Request,
  sentAt: string | undefined,
  now: number = Date.now(),
): RequestFacts {
  const facts: RequestFacts = {
    receivedAt: now,
    receivedAtIso: new Date(now).toISOString(),
    skewMs: 0,
    ...parseUserAgent(request.headers.get('user-agent') ?? undefined),
  };
  facts.skewMs = skewOf(sentAt, now) ?? 0;
  const cf: unknown = (request as Request & { cf?: unknown }).cf;
  const country = cfString(cf, 'country');
  const region = cfString(cf, 'region');
  const city = cfString(cf, 'city');
  if (country !== undefined) facts.country = country;
  if (region !== undefined) facts.region = region;
  if (city !== undefined) facts.city = city;
  return facts;
}

/**
 * The sender's clock error from a `sentAt` received at `now`, however large (a phone set to
 * the wrong day stamps its events and its sentAt alike, and validation read their window on
 * that clock); undefined when absent or unreadable.
 */
function skewOf(sentAt: string | undefined, now: number): number | undefined {
  const sent = sentAt !== undefined ? Date.parse(sentAt) : Number.NaN;
  return Number.isFinite(sent) ? sent - now : undefined;
}

/** What a server-sent message says about its end user's client (Segment's `context`). */
export interface ClientHints {
  userAgent?: string;
  country?: string;
  region?: string;
  city?: string;
  /**
   * When the message was sent, by the clock that stamped its time (epoch ms): its own
   * `sentAt` (analytics.js and other batching libraries stamp each message, not the batch),
   * else its batch's. Its offset from the receive time is the sender's clock error. Absent
   * for a message timed on arrival (no sender clock to correct) or with no readable sentAt.
   */
  sentAt?: number;
}

/**
 * Facts for a message a server sent on someone's behalf: the request's User-Agent and
 * `request.cf` describe the sending server (`python-requests` in a data centre), not the
 * person, so device and place come from the message's own hints or are left out.
 */
export function clientFacts(request: RequestFacts, hints: ClientHints): RequestFacts {
  const facts: RequestFacts = {
    receivedAt: request.receivedAt,
    receivedAtIso: request.receivedAtIso,
    // The message's or else the batch's skew corrects the sender's clock; a time the Worker
    // gave has no such error.
    skewMs: hints.sentAt === undefined ? 0 : hints.sentAt - request.receivedAt,
    ...parseUserAgent(hints.userAgent),
  };
  if (hints.country !== undefined) facts.country = hints.country;
  if (hints.region !== undefined) facts.region = hints.region;
  if (hints.city !== undefined) facts.city = hints.city;
  return facts;
}

/** The enrichment of one event: server receive time and its timestamp corrected by the batch's skew. */
export function enrichEvent(event: CustomerAction, facts: RequestFacts): Enrichment {
  const at = Date.parse(event.timestamp) - facts.skewMs;
  const enrichment: Enrichment = {
    receivedAt: facts.receivedAtIso,
    // Nothing happened after the Worker received it: an event stamped ahead of its own batch's
    // sentAt would otherwise land up to two skew windows in the future, and with it the
    // profile's clock, decay and retention.
    correctedTimestamp: new Date(
      Number.isFinite(at) ? Math.min(at, facts.receivedAt) : facts.receivedAt,
    ).toISOString(),
    device: facts.device,
  };
  if (facts.browser !== undefined) enrichment.browser = facts.browser;
  if (facts.os !== undefined) enrichment.os = facts.os;
  if (facts.country !== undefined) enrichment.country = facts.country;
  if (facts.region !== undefined) enrichment.region = facts.region;
  if (facts.city !== undefined) enrichment.city = facts.city;
  return enrichment;
}

/** The day (UTC) a daily-rotating salt belongs to. */
export function saltDay(now: number = Date.now()): string {
  return new Date(now).toISOString().slice(0, 10);
}

/** Campaign fields (Segment's shape) and the query parameters they come from. */
const UTM = [
  ['source', 'utm_source'],
  ['medium', 'utm_medium'],
  ['name', 'utm_campaign'],
  ['term', 'utm_term'],
  ['content', 'utm_content'],
] as const;

/**
 * The context with what its page URL says filled in where the producer left it out: the
 * page's path and query, and the campaign from `utm_*` parameters. The browser tag sends only
 * the URL (the tag stays smaller, and so does every event); a producer's own values win, and
 * a URL that does not parse adds nothing.
 */
export function withPageFacts(context: EventContext): EventContext {
  const href = context.page?.url;
  const url = href === undefined ? null : URL.parse(href);
  if (url === null) return context;
  const derived: EventContext = {
    ...context,
    page: {
      path: clipText(url.pathname, LIMITS.maxUrlLength),
      search: clipText(url.search, LIMITS.maxUrlLength),
      ...context.page,
    },
  };
  if (context.campaign === undefined) {
    const campaign: NonNullable<EventContext['campaign']> = {};
    for (const [field, param] of UTM) {
      const value = url.searchParams.get(param);
      if (value) campaign[field] = clipText(value, 256);
    }
    if (Object.keys(campaign).length > 0) derived.campaign = campaign;
  }
  return derived;
}
