/**
 * Bad input on every route, at volume: random malformed requests (fast-check, fixed seed)
 * through the Worker's real fetch handler, aimed at every route it serves — healthz, collect
 * and its preflight, the Segment API, config, decide and its preflight, the people routes,
 * the admin routes, replay, the Directus hook, the first-party `/attune/…` paths and the edge
 * proxy — and at paths it does not serve. What varies is what a caller controls: the method,
 * the path (encoded and odd segments, `..`, `%00`, unicode, very long), the query string
 * (parameters left out, repeated, huge, badly encoded), the headers (Origin, attune cookies
 * broken or huge, Authorization broken or valid, Content-Type, a Content-Length that does not
 * match the body, Content-Encoding, Sec-GPC, traceparent, Accept, If-None-Match, Connection, …)
 * and the body (junk, binary, deep nesting, gzip, a body that ends before its declared
 * length). Most requests start as a valid caller's — the site's write key, its server key,
 * the admin token, a signed hook, a consented visitor's cookies — so the fuzz reaches past
 * authentication into the handlers, and then have some of that spoilt.
 *
 * With the origin (the fixture Worker) and a Directus stand-in up, it proves: no answer is a
 * 5xx (the README's 5xx are outages of those two, or of the queue), no request throws, no
 * background work rejects, every error an Attune route answers is the documented JSON error
 * shape (`{error: {code, message}}`, with Segment's top-level `code` and `message` on the
 * Segment routes), every message the fuzz made the Worker queue is one the consumer takes,
 * and valid traffic on each route still works afterwards.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { QueueMessageSchema } from '@attune/shared-schema';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  basic,
  encodeComponent,
  envelope,
  type FuzzRequest,
  type HeaderSet,
  HOOK_ROUTE,
  PRIVACY_TOKEN,
  requestArb,
  SHOP,
  signatures,
  TARGETS,
  USER_IDS,
  VISITOR,
  validConsentCookie,
} from './app.fuzz.arbitraries.ts';
import { FIXTURE_CATALOG } from './catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from './catalog/index.ts';
import { holdBuiltInConsentConfig } from './config/test-support.ts';
import { anonymousIdInGroup, seedPerson, viewed } from './decide/fixtures/people.ts';
import { signHookBody } from './hooks/signature.ts';
import worker from './index.ts';
import {
  ADMIN_TOKEN,
  anonId,
  envWithSites,
  gzip,
  IDENTITY_SECRET,
  makeEvent,
  ORIGIN,
  recordQueue,
  SERVER_KEY,
  SITE,
  signed,
  WRITE_KEY,
} from './ingest/test-support.ts';
import { isAttunePath } from './proxy/index.ts';

const REQUESTS = 5_000;
const SEED = 20261130;

const HOOK_SECRET = 'test-hook-secret';
/** The Directus stand-in's address (see directusStandIn). */
const DIRECTUS = 'http://directus.fuzz.test';

// Generous limits so the fuzz measures the handlers, not the rate limiter (429 is allowed anyway).
const fuzzEnv = {
  ...envWithSites([
    {
      id: SITE,
      writeKey: WRITE_KEY,
      allowedOrigins: [ORIGIN, SHOP],
      settings: {
        rateLimit: { ipPerSecond: 1e6, ipBurst: 1e6, anonymousPerSecond: 1e6, anonymousBurst: 1e6 },
      },
    },
  ]),
  ATTUNE_SITE_SECRETS: JSON.stringify({
    [SITE]: { identitySecret: IDENTITY_SECRET, serverKey: SERVER_KEY, privacyToken: PRIVACY_TOKEN },
  }),
  ADMIN_TOKEN,
  HOOK_SECRET,
  DIRECTUS_URL: DIRECTUS,
  ORIGIN_URL: 'http://origin.fixture.test',
} as unknown as Env;

// ---------------------------------------------------------------------------------------
// Sending, and judging the answers.

const encoder = new TextEncoder();

/**
 * A header value as the wire carries it: the runtime takes other characters as UTF-8 bytes
 * (and warns on stderr at each), so the fuzz sends them percent-encoded, as clients do.
 */
function asciiHeader(value: string): string {
  return value.replace(/[^\x20-\x7e\t]/g, (ch) => encodeComponent(ch));
}

/** A body that ends before the length it declares (a client gone part-way), as the runtime hands such a body on. */
function truncatedBody(bytes: Uint8Array, declared: number): ReadableStream<Uint8Array> {
  const { readable, writable } = new FixedLengthStream(declared);
  const writer = writable.getWriter();
  writer
    .write(bytes)
    .then(() => writer.close())
    .catch(() => undefined);
  return readable;
}

/** The request as the Worker gets it (the runtime builds the same from the wire). */
async function build(fuzz: FuzzRequest): Promise<Request> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(fuzz.headers)) headers.set(name, asciiHeader(value));
  const b = fuzz.body;
  let bytes: Uint8Array | undefined;
  let body: BodyInit | null = null;
  if (fuzz.method !== 'GET' && fuzz.method !== 'HEAD' && b.kind !== 'none') {
    if (b.kind === 'text') {
      const text =
        fuzz.route === HOOK_ROUTE
          ? b.text.replace('"__AT__"', JSON.stringify(new Date().toISOString()))
          : b.text;
      bytes = encoder.encode(text);
      if (fuzz.signHook && fuzz.route === HOOK_ROUTE)
        headers.set('x-attune-signature', await signHookBody(HOOK_SECRET, text));
    } else if (b.kind === 'bytes') bytes = b.bytes;
    else if (b.kind === 'gzip') {
      const zipped = await gzip(b.text);
      bytes = b.truncate ? zipped.slice(0, Math.max(1, Math.floor(zipped.length / 2))) : zipped;
      headers.set('content-encoding', 'gzip');
    } else {
      const part = encoder.encode(b.text).slice(0, 200);
      headers.set('content-length', String(part.length + 1000));
      body = truncatedBody(part, part.length + 1000);
    }
    if (bytes !== undefined) body = bytes;
  }
  if (bytes !== undefined) {
    const length = bytes.length;
    if (fuzz.lengthMode === 'match') headers.set('content-length', String(length));
    else if (fuzz.lengthMode === 'smaller') headers.set('content-length', String(Math.max(0, length - 7)));
    else if (fuzz.lengthMode === 'larger') headers.set('content-length', String(length + 1000));
    else if (fuzz.lengthMode === 'junk') headers.set('content-length', fuzz.junkLength);
  }
  return new Request(`${SHOP}${fuzz.path}${fuzz.query}`, { method: fuzz.method, headers, body });
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * `work`'s value, or 'timed out' after `ms`; the timer is cleared either way (thousands of
 * requests' timers left running would reach the isolate's limit of 10,000).
 */
async function within<T>(work: Promise<T>, ms: number): Promise<T | 'timed out'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'timed out'>((resolve) => {
    timer = setTimeout(() => resolve('timed out'), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends one request through the Worker's fetch handler; a crash (a throw, a broken answer, rejected background work, a hang) is a string. */
async function send(request: Request, bindings: Env = fuzzEnv): Promise<Answer | string> {
  const ctx = createExecutionContext();
  let response: Response | 'timed out';
  try {
    response = await within(
      Promise.resolve().then(() => worker.fetch(request, bindings, ctx)),
      30_000,
    );
  } catch (e) {
    return `fetch threw ${String(e)}`;
  }
  if (response === 'timed out') return 'no answer within 30 s';
  let text: string | 'timed out';
  try {
    text = await within(
      response.arrayBuffer().then((bytes) => new TextDecoder().decode(bytes)),
      30_000,
    );
  } catch (e) {
    return `answer body broke: ${String(e)}`;
  }
  if (text === 'timed out') return 'answer body not finished within 30 s';
  try {
    await waitOnExecutionContext(ctx);
  } catch (e) {
    return `background work rejected: ${String(e)}`;
  }
  return { status: response.status, headers: response.headers, text };
}

/** The proxy's own refusal of a method it does not pass on (README, "Proxy behaviour"). */
const PROXIED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
const SEGMENT_PATH = /^\/(v1|attune|attune\/v1)\/(batch|track|page|identify)$/;

function decodedPath(pathname: string): string {
  try {
    return decodeURI(pathname);
  } catch {
    return pathname;
  }
}

/** What is wrong with an error answer's shape, if anything (see the module comment). */
function shapeProblem(request: Request, answer: Answer): string | undefined {
  if (answer.status < 400) return undefined;
  const { pathname } = new URL(request.url);
  // The origin's own answers pass through the proxy as they are.
  if (answer.headers.get('x-origin') === 'fixture') return undefined;
  // The proxy's own refusals are plain text (README, "Proxy behaviour"): a method it does not
  // pass on, and a body that broke off.
  if (!isAttunePath(pathname) && (answer.headers.get('content-type') ?? '').startsWith('text/plain')) {
    if (answer.status === 405 && answer.headers.get('allow') === PROXIED_METHODS) return undefined;
    if (answer.status === 400 && answer.text.startsWith('The request body broke off')) return undefined;
  }
  const routed = decodedPath(pathname);
  // A refused decide preflight has no body (README, "CORS").
  if (request.method === 'OPTIONS' && answer.status === 403 && /decide$/.test(routed) && answer.text === '')
    return undefined;
  if (!(answer.headers.get('content-type') ?? '').startsWith('application/json'))
    return `content-type ${answer.headers.get('content-type')}, not JSON`;
  if (request.method === 'HEAD') return answer.text === '' ? undefined : 'a HEAD answer with a body';
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    return 'body is not JSON';
  }
  const error = typeof json === 'object' && json !== null ? (json as { error?: unknown }).error : undefined;
  const { code, message } = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    message?: unknown;
  };
  if (typeof code !== 'string' || code === '' || typeof message !== 'string' || message === '')
    return 'not {error: {code, message}}';
  if (
    request.method === 'POST' &&
    SEGMENT_PATH.test(routed) &&
    code !== 'no_route' &&
    code !== 'method_not_allowed'
  ) {
    const top = json as { code?: unknown; message?: unknown };
    if (top.code !== code || top.message !== message) return 'no Segment top-level code and message';
  }
  return undefined;
}

/** `text` with lone surrogates replaced, so a report of it can be printed. */
function wellFormed(text: string): string {
  return text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

const clip = (text: string, max: number) =>
  text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;

/** One line saying what was sent, enough to write the request again. */
function summary(fuzz: FuzzRequest): string {
  const b = fuzz.body;
  const body =
    b.kind === 'none'
      ? 'none'
      : b.kind === 'bytes'
        ? `${b.bytes.length} bytes`
        : `${b.kind} ${JSON.stringify(clip(b.text, 160))}`;
  const headers = Object.fromEntries(Object.entries(fuzz.headers).map(([k, v]) => [k, clip(v, 80)]));
  return `[${fuzz.route}] ${fuzz.method} ${clip(`${fuzz.path}${fuzz.query}`, 200)} headers=${JSON.stringify(headers)} length=${fuzz.lengthMode} body=${body}`;
}

// ---------------------------------------------------------------------------------------
// The stand-ins, and what the Worker logs meanwhile.

/**
 * Directus for the fuzz, up throughout: the catalog collections from the fixture Directus,
 * every other read (people, events, consent records, dead letters, orders) answered empty and
 * every write taken, as a healthy Directus holding nothing of these people does. The origin
 * is the fixture Worker the test configuration routes outbound fetches to.
 */
function directusStandIn(): void {
  const original = globalThis.fetch;
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.origin !== DIRECTUS) return original(input, init);
    const request = new Request(input, init);
    const collection = /^\/items\/([^/]+)/.exec(url.pathname)?.[1];
    if (
      request.method === 'GET' &&
      (collection === 'products' || collection === 'slot_content' || collection === 'trigger_rules')
    )
      return original(`http://directus.fixture.test${url.pathname}${url.search}`, {
        headers: request.headers,
      });
    await request.arrayBuffer();
    return Response.json({ data: [] });
  });
}

/** What the Worker logged during the fuzz (kept, not printed: its lines quote what the fuzz sent). */
const logged: string[] = [];
const rejections: string[] = [];
const onRejection = (event: PromiseRejectionEvent) => {
  rejections.push(String(event.reason));
};

beforeAll(async () => {
  for (const level of ['log', 'info', 'warn', 'error'] as const)
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      logged.push(args.map(String).join(' '));
    });
  for (const id of USER_IDS) signatures.set(id, await signed(id));
  await putCatalogSnapshot(fuzzEnv, FIXTURE_CATALOG);
  await holdBuiltInConsentConfig(fuzzEnv);
  await seedPerson(fuzzEnv, `anon:${VISITOR}`, { analytics: true, personalization: true, marketing: true }, [
    viewed('hiking-boots', 'outdoor', ['boots', 'waterproof']),
  ]);
  directusStandIn();
  addEventListener('unhandledrejection', onRejection);
});
afterAll(() => {
  removeEventListener('unhandledrejection', onRejection);
  vi.restoreAllMocks();
});

/** A valid request after the fuzz; a crash fails the test, naming the request. */
async function valid(method: string, path: string, headers: HeaderSet = {}, body?: string): Promise<Answer> {
  const withLength =
    body === undefined ? headers : { 'content-length': String(encoder.encode(body).length), ...headers };
  const answer = await send(
    new Request(`${SHOP}${path}`, { method, headers: withLength, ...(body === undefined ? {} : { body }) }),
  );
  if (typeof answer === 'string') throw new Error(`${method} ${path}: ${answer}`);
  return answer;
}

describe('fuzz: every route', () => {
  it(`${REQUESTS.toLocaleString('en')} random malformed requests across every route: no 5xx, no crash, documented error shapes, valid traffic still served`, {
    timeout: 300_000,
  }, async () => {
    const queue = recordQueue(fuzzEnv);
    const samples = fc.sample(requestArb, { numRuns: REQUESTS, seed: SEED });
    const problems: string[] = [];
    const statuses = new Map<string, Map<number, number>>();
    const chunk = 25;
    for (let i = 0; i < samples.length; i += chunk) {
      await Promise.all(
        samples.slice(i, i + chunk).map(async (fuzz) => {
          const request = await build(fuzz);
          const answer = await send(request);
          if (typeof answer === 'string') {
            problems.push(`${answer}: ${summary(fuzz)}`);
            return;
          }
          const byRoute = statuses.get(fuzz.route) ?? new Map<number, number>();
          byRoute.set(answer.status, (byRoute.get(answer.status) ?? 0) + 1);
          statuses.set(fuzz.route, byRoute);
          const shape = answer.status >= 500 ? 'a 5xx' : shapeProblem(request, answer);
          if (shape !== undefined)
            problems.push(`${answer.status} ${shape} (${clip(answer.text, 200)}): ${summary(fuzz)}`);
        }),
      );
    }
    queue.restore();
    const table = JSON.stringify(
      Object.fromEntries([...statuses].map(([route, s]) => [route, Object.fromEntries(s)])),
    );
    // The error handler's log lines (error name and route), each kind once, with how often.
    const crashes = new Map<string, number>();
    for (const line of logged.filter((l) => l.includes('"unhandled"')))
      crashes.set(line, (crashes.get(line) ?? 0) + 1);
    expect(
      problems.map(wellFormed),
      wellFormed(
        `${problems.length} problems, e.g.\n${problems.slice(0, 8).join('\n')}\nlogged: ${[...crashes].map(([line, n]) => `${n}× ${line}`).join('\n')}\nstatuses: ${table}`,
      ),
    ).toEqual([]);
    expect(rejections).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Every message the Worker queued is one the consumer takes.
    const refused = queue.messages.filter((m) => !QueueMessageSchema.safeParse(m).success);
    expect(refused.map((m) => wellFormed(clip(JSON.stringify(m) ?? '', 400)))).toEqual([]);
    // The fuzz reached past authentication on every route: each answered some request with a 2xx.
    for (const target of TARGETS.filter((t) => t.route !== 'unknown paths')) {
      const answered = [...(statuses.get(target.route) ?? new Map<number, number>())];
      expect(
        answered.some(([status]) => status >= 200 && status < 300),
        `${target.route}: ${table}`,
      ).toBe(true);
    }

    // Valid traffic on each route still works.
    const browser = { origin: ORIGIN, 'content-type': 'text/plain;charset=UTF-8' };
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const server = { authorization: basic(`${SERVER_KEY}:`), 'content-type': 'application/json' };
    const a = anonId('after');
    const collected = envelope([
      makeEvent(a, 'product.viewed', { properties: { productId: 'p1', category: 'outdoor' } }),
    ]);
    const segmentCalls: Record<string, object> = {
      batch: {
        batch: [{ type: 'track', event: 'Product Viewed', anonymousId: a, properties: { product_id: 'p1' } }],
      },
      track: { event: 'Product Viewed', anonymousId: a, properties: { product_id: 'p1' } },
      page: { name: 'Home', anonymousId: a },
      identify: { anonymousId: a, traits: { plan: 'pro' } },
    };
    expect((await valid('GET', '/healthz')).status).toBe(200);
    expect((await valid('POST', '/v1/collect', browser, collected)).status).toBe(200);
    expect((await valid('OPTIONS', '/v1/collect', { origin: ORIGIN })).status).toBe(204);
    for (const [call, body] of Object.entries(segmentCalls))
      expect((await valid('POST', `/v1/${call}`, server, JSON.stringify(body))).status, call).toBe(200);
    expect((await valid('GET', `/v1/config?writeKey=${WRITE_KEY}`, { origin: ORIGIN })).status).toBe(200);
    const decided = await valid(
      'GET',
      `/v1/decide?slots=hero,recommendations&writeKey=${WRITE_KEY}&anonymousId=${a}`,
      { origin: ORIGIN },
    );
    expect(decided.status).toBe(200);
    expect(JSON.parse(decided.text)).toMatchObject({
      decisions: { recommendations: { kind: 'recommendations' } },
    });
    expect((await valid('OPTIONS', `/v1/decide?writeKey=${WRITE_KEY}`, { origin: ORIGIN })).status).toBe(204);
    expect((await valid('GET', `/v1/people/anon:${a}?site=${SITE}&scope=edge`, admin)).status).toBe(200);
    const privacy = { authorization: `Bearer ${PRIVACY_TOKEN}` };
    expect((await valid('GET', `/v1/people/anon:${a}?site=${SITE}`, privacy)).status).toBe(200);
    expect((await valid('POST', `/v1/admin/replay/anon:${a}?site=${SITE}`, admin)).status).toBe(200);
    expect((await valid('DELETE', `/v1/people/anon:${a}?site=${SITE}`, admin)).status).toBe(200);
    expect((await valid('POST', '/v1/admin/dead-letters/resend', admin, '{"limit":10}')).status).toBe(200);
    expect((await valid('GET', '/v1/admin/stats', admin)).status).toBe(200);
    expect((await valid('POST', `/v1/admin/lift?site=${SITE}&days=7`, admin)).status).toBe(200);
    const hook = JSON.stringify({
      source: 'directus',
      collection: 'products',
      event: 'items.update',
      keys: ['p1'],
      at: new Date().toISOString(),
    });
    const signedHook = { 'x-attune-signature': await signHookBody(HOOK_SECRET, hook) };
    expect((await valid('POST', '/v1/hooks/directus', signedHook, hook)).status).toBe(200);
    expect((await valid('GET', '/attune/attune.js')).status).toBe(200);
    // A visitor who chose after the fuzz: the first-party paths and the proxy personalize for them.
    // Outside the holdout group, whose pages keep the origin's defaults.
    const fresh = anonymousIdInGroup(anonId('fresh'), false);
    await seedPerson(fuzzEnv, `anon:${fresh}`, { analytics: true, personalization: true }, [
      viewed('hiking-boots', 'outdoor', ['boots']),
    ]);
    const cookie = `attune_aid=${fresh}; attune_consent=${validConsentCookie}`;
    expect((await valid('GET', '/attune/decide?slots=hero', { cookie })).status).toBe(200);
    const firstParty = await valid(
      'POST',
      '/attune/collect',
      { origin: SHOP, 'content-type': 'text/plain;charset=UTF-8' },
      envelope([makeEvent(fresh)]),
    );
    expect(firstParty.status).toBe(200);
    expect(firstParty.headers.getSetCookie().join('\n')).toContain(`attune_aid=${fresh}`);
    const page = await valid('GET', '/products/trail-jacket', { accept: 'text/html', cookie });
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-attune-decision');
    const missing = await valid('GET', '/v1/no-such-route');
    expect(JSON.parse(missing.text)).toMatchObject({
      error: { code: 'no_route' },
    });
  });
});
