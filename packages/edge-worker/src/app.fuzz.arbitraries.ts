/**
 * fast-check generators of the requests the all-route fuzz (app.fuzz.test.ts) sends: for
 * each route the Worker serves, what a valid caller sends (its write key, server key, admin
 * or privacy token, signed hook, consented visitor's cookies), and what a broken client or an
 * attacker changes of it — method, path, query string, headers, body. Test-only: nothing the
 * Worker runs imports this file.
 */
import fc from 'fast-check';
import { consentState } from './decide/fixtures/people.ts';
import {
  ADMIN_TOKEN,
  ALL,
  EVENT_FIELDS,
  makeEvent,
  ORIGIN,
  SERVER_KEY,
  SITE,
  WRITE_KEY,
} from './ingest/test-support.ts';

/** The shop's own address as the browser sees it: an allowed origin of the site, so first-party paths are same-origin. */
export const SHOP = 'http://127.0.0.1:8787';
/** The site's privacy token in the fuzz's bindings (the test gives the site this one). */
export const PRIVACY_TOKEN = 'fuzz-privacy-token-0123456789';
/** A consented visitor the fuzz's valid requests name (its cookie, its events); the test seeds them. */
export const VISITOR = 'fuzz-visitor-0001';
/** Users some of the fuzz's events and decisions are signed in as, with valid signatures (the test fills `signatures` first). */
export const USER_IDS = ['ada', 'u-1'];
export const signatures = new Map<string, string>();
/** The route whose bodies are signed hooks (see FuzzRequest.signHook). */
export const HOOK_ROUTE = 'POST /v1/hooks/directus';

// ---------------------------------------------------------------------------------------
// Values: odd ones, and the valid ones a caller would send.

/** Odd text: what a broken client or an attacker puts where a value belongs. */
const oddText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '%',
      '%ZZ',
      '%00',
      '%E0%A4%A',
      '%C0%AE%C0%AE',
      '..',
      '../..',
      '\\',
      '"',
      "'",
      '<script>',
      '\u0000',
      '\u202e',
      'é',
      '😀',
      '\ud800',
      'null',
      '[]',
      '{}',
      '__proto__',
      'constructor',
      '-1',
      '0',
      '1e309',
      'NaN',
      '9'.repeat(40),
      'user:',
      'anon:',
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 129, max: 20_000 }).map((n) => 'x'.repeat(n)) },
);

const junk = fc.anything({ maxDepth: 3, maxKeys: 6, withNullPrototype: true, withObjectString: true });

/** Mostly the value a valid caller sends, sometimes odd text. */
const mostly = (valid: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: oddText });

const anonymousIdArb = mostly(
  fc.oneof(
    fc.constant(VISITOR),
    fc.constantFrom('fuzz-visitor-0002', 'fuzz-visitor-0003'),
    fc.stringMatching(/^[A-Za-z0-9_-]{8,40}$/),
  ),
);
const personKeyArb = fc.oneof(
  anonymousIdArb.map((id) => `anon:${id}`),
  mostly(fc.constantFrom('ada', 'u-1', 'shop visitor')).map((id) => `user:${id}`),
  oddText,
);
const writeKeyArb = mostly(fc.constant(WRITE_KEY));
const siteArb = mostly(fc.constant(SITE));

/** encodeURIComponent, with a lone surrogate (which it refuses) sent as the replacement character. */
export function encodeComponent(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return encodeURIComponent(text.replace(/[\ud800-\udfff]/g, '\ufffd'));
  }
}

// ---------------------------------------------------------------------------------------
// Paths and query strings.

type Segments = string[];

const oddSegment = fc.oneof(
  oddText.filter((s) => s.length < 200),
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2E',
    '%2F',
    '%5C',
    '%00',
    '%ZZ',
    '%',
    ';x=1',
    '',
    '%20',
    '~',
    'attune',
    'v1',
  ),
);

/** A request path: the route's own, or mangled. Raw: URL parsing normalizes it as it would a wire path. */
function pathArb(segments: Segments): fc.Arbitrary<string> {
  const plain = `/${segments.join('/')}`;
  return fc.oneof(
    { weight: 24, arbitrary: fc.constant(plain) },
    // Odd segments appended, inserted or replacing one.
    {
      weight: 3,
      arbitrary: fc.tuple(fc.nat(segments.length), oddSegment, fc.boolean()).map(([at, odd, replace]) => {
        const copy = [...segments];
        copy.splice(at, replace ? 1 : 0, odd);
        return `/${copy.join('/')}`;
      }),
    },
    { weight: 1, arbitrary: fc.constant(`${plain}/`) },
    { weight: 1, arbitrary: fc.constant(`/${plain}`) },
    { weight: 1, arbitrary: fc.constant(plain.toUpperCase()) },
    // The first-party alias of a /v1 path, and `..` out of it.
    { weight: 2, arbitrary: fc.constant(plain.replace(/^\/v1\//, '/attune/')) },
    { weight: 1, arbitrary: fc.constant(`/attune/..${plain}`) },
    { weight: 1, arbitrary: fc.constant(`/attune/%2e%2e${plain}`) },
    // A letter percent-encoded, as a client that encodes everything sends it.
    {
      weight: 1,
      arbitrary: fc.constant(plain.replace(/[a-z]/, (ch) => `%${ch.charCodeAt(0).toString(16)}`)),
    },
    // Very long (a URL within Cloudflare's 16 KB).
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 12_000 }).map((n) => `${plain}/${'a'.repeat(n)}`) },
  );
}

/** A query string: the route's valid parameters (now and then one left out), plus odd, repeated and unknown ones. */
function queryArb(valid: Record<string, fc.Arbitrary<string>> = {}): fc.Arbitrary<string> {
  const keys = Object.keys(valid);
  const pairs = fc
    .tuple(
      fc.record(valid),
      fc.subarray(keys, { maxLength: Math.min(1, keys.length) }),
      fc.boolean(),
      fc.boolean(),
    )
    .map(([values, dropped, dropSome]) =>
      Object.entries(values).filter(([k]) => !(dropSome && dropped.includes(k))),
    );
  const extra = fc.oneof(
    { weight: 2, arbitrary: fc.constant<[string, string][]>([]) },
    {
      weight: 1,
      arbitrary: fc.array(fc.tuple(keys.length > 0 ? mostly(fc.constantFrom(...keys)) : oddText, oddText), {
        minLength: 1,
        maxLength: 4,
      }),
    },
  );
  return fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom('', '?', '?&&', '?=', '?=&=', '?%', '?a=%ZZ', '?#x') },
    {
      weight: 12,
      arbitrary: fc
        .tuple(pairs, extra, fc.constantFrom('encoded', 'encoded', 'raw'), fc.integer({ min: 0, max: 9 }))
        .map(([valid, more, mode, repeat]) => {
          const all = [...valid, ...more];
          // A repeated parameter: which one a route reads must not matter to its health.
          const first = all[0];
          if (repeat === 0 && first) all.push([first[0], [...first[1]].reverse().join('')]);
          const part = (s: string) => (mode === 'encoded' ? encodeComponent(s) : s.replace(/[#\s]/g, ''));
          return all.length === 0 ? '' : `?${all.map(([k, v]) => `${part(k)}=${part(v)}`).join('&')}`;
        }),
    },
  );
}

// ---------------------------------------------------------------------------------------
// Headers: a valid caller's, then some of them spoilt.

export type HeaderSet = Record<string, string>;

export const basic = (text: string) => `Basic ${btoa(text)}`;
export const validConsentCookie = encodeURIComponent(JSON.stringify(ALL));
const visitorCookie = `attune_aid=${VISITOR}; attune_consent=${validConsentCookie}`;

const cookiePart = fc.oneof(
  fc
    .oneof(anonymousIdArb, fc.constant('%E0%A4%A'), fc.constant('x'.repeat(8000)))
    .map((v) => `attune_aid=${v}`),
  fc
    .oneof(
      fc.constant(validConsentCookie),
      fc.constant(encodeURIComponent('{"categories":{"personalization":true},"policyVersion":"1"}')),
      fc.constantFrom('%7B', '%', encodeURIComponent('['.repeat(5000))),
      fc.integer({ min: 100, max: 2000 }).map((n) =>
        encodeURIComponent(
          JSON.stringify({
            categories: Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, true])),
            policyVersion: '1',
          }),
        ),
      ),
      junk.map((v) => encodeComponent(JSON.stringify(v) ?? '')),
      oddText,
    )
    .map((v) => `attune_consent=${v}`),
  fc
    .oneof(fc.constantFrom('AAAAAAAAAAAAAAAAAAAAAA', 'a.b.c', '.'.repeat(500)), oddText)
    .map((v) => `attune_ended=${v}`),
  fc.constantFrom('=', ';', 'novalue', 'a="b', '"attune_aid"="x"', 'attune_aid'),
  oddText,
);

/** Header values a broken client or an attacker sends, by header. */
const ODD_HEADERS: Record<string, fc.Arbitrary<string>> = {
  origin: fc.oneof(
    fc.constantFrom(
      'https://evil.example',
      'null',
      '',
      'http://localhost:3000/',
      'HTTP://LOCALHOST:3000',
      ORIGIN,
      SHOP,
    ),
    oddText,
  ),
  cookie: fc.array(cookiePart, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('; ')),
  authorization: fc.oneof(
    fc.constantFrom(
      'Basic',
      'Basic ',
      'Basic ====',
      'Basic !!!',
      'Basic %%%',
      basic(`${WRITE_KEY}:`),
      basic(':'),
      basic(''),
      `Basic ${btoa('\xff\xfe\xfd:')}`,
      `basic ${btoa(`${SERVER_KEY}:`)}`,
      basic(SERVER_KEY),
      'Bearer',
      'Bearer ',
      `bearer   ${ADMIN_TOKEN}  `,
      `Bearer ${ADMIN_TOKEN}x`,
      `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
      `Bearer ${PRIVACY_TOKEN}`,
      'Digest username="x"',
      `Basic ${'A'.repeat(20_000)}`,
    ),
    oddText.map((t) => `Basic ${t}`),
    oddText.map((t) => `Bearer ${t}`),
    oddText,
  ),
  'content-type': fc.oneof(
    fc.constantFrom(
      'application/json; charset=utf-16',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      'text/html',
      '',
    ),
    oddText,
  ),
  'content-encoding': fc.oneof(
    fc.constantFrom('gzip', 'x-gzip', 'br', 'deflate', 'gzip, gzip', 'identity', 'GZIP'),
    oddText,
  ),
  'sec-gpc': fc.oneof(fc.constantFrom('1', '0', '1, 1'), oddText),
  traceparent: fc.oneof(
    fc.constantFrom(
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `00-${'a'.repeat(5000)}`,
    ),
    oddText,
  ),
  accept: fc.oneof(fc.constantFrom('text/html', '*/*', 'application/json', 'image/*'), oddText),
  'if-none-match': fc.oneof(
    fc.constantFrom('*', '"1"', 'W/"1"', '"origin-etag"', `${'"x", '.repeat(2000)}"y"`),
    oddText,
  ),
  'sec-fetch-dest': fc.oneof(fc.constantFrom('document', 'image', 'empty'), oddText),
  'cf-connecting-ip': fc.oneof(
    fc.constantFrom('203.0.113.9', '2001:db8::1', '::', '1:2:3:4:5:6:7:8:9', '999.1.1.1'),
    oddText,
  ),
  range: fc.oneof(fc.constantFrom('bytes=0-10', 'bytes=10-0', 'bytes=-5', 'bytes=99999999-'), oddText),
  'if-range': fc.oneof(fc.constant('"origin-etag"'), oddText),
  connection: fc.oneof(
    fc.constantFrom('close', 'keep-alive', 'cookie, origin', 'authorization, x-a', 'cf-connecting-ip'),
    oddText,
  ),
  'x-forwarded-for': oddText,
  'accept-encoding': fc.oneof(fc.constantFrom('gzip, br', 'zstd', 'identity', '*;q=0', ''), oddText),
  'x-attune-signature': fc.oneof(
    fc.constantFrom('sha256=', `sha256=${'0'.repeat(64)}`, `SHA256=${'A'.repeat(64)}`),
    oddText,
  ),
};

/** Some headers spoilt: none most of the time, else one to three set to odd values. */
const spoiltHeaders: fc.Arbitrary<HeaderSet> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({}) },
  {
    weight: 1,
    arbitrary: fc
      .uniqueArray(fc.constantFrom(...Object.keys(ODD_HEADERS)), { minLength: 1, maxLength: 3 })
      .chain((names) => fc.record(Object.fromEntries(names.map((n) => [n, ODD_HEADERS[n] ?? oddText])))),
  },
);

/** What a browser on an allowed origin sends to the browser API. */
const browserHeaders = fc.record({
  origin: fc.constantFrom(ORIGIN, SHOP),
  'content-type': fc.constant('text/plain;charset=UTF-8'),
});
/** What a page of the shop itself sends to the first-party paths, with the visitor's cookies now and then. */
const firstPartyHeaders = fc.tuple(fc.boolean(), fc.boolean()).map(
  ([withOrigin, withCookie]): HeaderSet => ({
    'content-type': 'text/plain;charset=UTF-8',
    ...(withOrigin ? { origin: SHOP } : {}),
    ...(withCookie ? { cookie: visitorCookie } : {}),
  }),
);
/** What a server producer sends to the Segment API: Basic auth with the server key, or none (the key in the body). */
const serverHeaders = fc
  .oneof(
    { weight: 3, arbitrary: fc.constant(basic(`${SERVER_KEY}:`)) },
    { weight: 1, arbitrary: fc.constant('') },
  )
  .map(
    (auth): HeaderSet => ({
      'content-type': 'application/json',
      ...(auth === '' ? {} : { authorization: auth }),
    }),
  );
/** What an operator sends: the admin token, the site's privacy token, or nothing. */
const operatorHeaders = fc
  .oneof(
    { weight: 6, arbitrary: fc.constant(`Bearer ${ADMIN_TOKEN}`) },
    { weight: 2, arbitrary: fc.constant(`Bearer ${PRIVACY_TOKEN}`) },
    { weight: 1, arbitrary: fc.constant('') },
  )
  .map((auth): HeaderSet => (auth === '' ? {} : { authorization: auth, 'content-type': 'application/json' }));
/** What a browser navigating to the shop sends: HTML accepted, the consented visitor's cookies now and then. */
const pageHeaders = fc.tuple(fc.boolean(), fc.boolean()).map(
  ([navigation, withCookie]): HeaderSet => ({
    accept: navigation ? 'text/html,application/xhtml+xml' : '*/*',
    ...(navigation ? { 'sec-fetch-dest': 'document' } : {}),
    ...(withCookie ? { cookie: visitorCookie } : {}),
  }),
);

// ---------------------------------------------------------------------------------------
// Bodies.

/** The body a request carries: text, bytes, gzipped text, or a body that ends before its declared length. */
export type Body =
  | { kind: 'none' }
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'gzip'; text: string; truncate: boolean }
  | { kind: 'truncated'; text: string };

const now = new Date().toISOString();
const deep = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** Bodies any route may get: junk of every kind. */
const anyBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.uint8Array({ maxLength: 400 }),
  fc.json({ maxDepth: 4 }),
  junk.map((v) => JSON.stringify(v) ?? 'null'),
  fc.integer({ min: 10, max: 100_000 }).map((depth) => '['.repeat(depth)),
  fc.integer({ min: 10, max: 60_000 }).map(deep),
  fc.constant('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}'),
  fc.integer({ min: 1, max: 700 }).map((kb) => `"${'y'.repeat(kb * 1024)}"`),
);

/** A valid browser event of the visitor (or of a few others), as the SDK sends it. */
const collectEvent = fc
  .tuple(
    fc.constantFrom('page.viewed', 'product.viewed', 'cart.item.added', 'consent.updated', 'order.completed'),
    anonymousIdArb.filter((id) => /^[A-Za-z0-9_-]{1,128}$/.test(id)),
    fc.option(fc.constantFrom(...USER_IDS), { freq: 4 }),
  )
  .map(
    ([name, anonymousId, userId]) =>
      makeEvent(anonymousId, name, {
        properties:
          name === 'consent.updated'
            ? consentState({ analytics: true, personalization: true, marketing: true })
            : { productId: 'p1', category: 'outdoor' },
        // Signed in now and then: merges and the person's own object are reached too.
        ...(userId === null ? {} : { userId, userIdSignature: signatures.get(userId) ?? '' }),
      }) as unknown as Record<string, unknown>,
  );
export const envelope = (batch: unknown[], writeKey: string = WRITE_KEY) =>
  JSON.stringify({ writeKey, sentAt: now, batch }) ?? '';

const collectBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.array(collectEvent, { minLength: 1, maxLength: 3 }), writeKeyArb)
      .map(([batch, key]) => envelope(batch, key)),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(collectEvent, fc.constantFrom(...EVENT_FIELDS), junk).map(([event, field, value]) => {
      event[field] = value;
      return envelope([event]);
    }),
  },
  { weight: 1, arbitrary: fc.array(junk, { maxLength: 4 }).map((batch) => envelope(batch)) },
  {
    weight: 1,
    arbitrary: fc.tuple(collectEvent, fc.integer({ min: 10, max: 20_000 })).map(([event, depth]) => {
      const text = envelope([{ ...event, properties: 'DEEP' }]);
      return text.replace('"DEEP"', deep(depth));
    }),
  },
  { weight: 3, arbitrary: anyBody },
);

/** A Segment spec message as a server library sends it, consent included now and then. */
const segmentMessage = fc
  .tuple(
    fc.constantFrom('track', 'page', 'identify', 'screen'),
    fc.constantFrom('Order Completed', 'Product Viewed', 'Product Added'),
    anonymousIdArb,
    fc.option(fc.constantFrom('ada', 'u-1')),
    fc.option(fc.uuid()),
    fc.option(
      fc.record({ Analytics: fc.boolean(), Personalization: fc.boolean(), Advertising: fc.boolean() }),
    ),
  )
  .map(([type, event, anonymousId, userId, messageId, preferences]) => ({
    type,
    event,
    anonymousId,
    ...(userId === null ? {} : { userId }),
    ...(messageId === null ? {} : { messageId }),
    timestamp: now,
    properties: { product_id: 'p1', price: 12.5, category: 'outdoor' },
    context: {
      ...(preferences === null ? {} : { consent: { categoryPreferences: preferences } }),
      userAgent: 'Mozilla/5.0',
      location: { country: 'DE' },
    },
  }));

/** Odd values for a Segment message's fields, the nested ones Segment defines included. */
const segmentOddValue = fc.oneof(
  oddText,
  junk,
  fc
    .dictionary(
      mostly(
        fc.constantFrom(
          'Analytics',
          'Personalization',
          'Functional',
          'Advertising',
          'Marketing',
          '__proto__',
        ),
      ),
      junk,
    )
    .map((categoryPreferences) => ({ consent: { categoryPreferences, policyVersion: 'x'.repeat(100) } })),
  fc.dictionary(oddText, junk).map((categories) => ({ consent: { categories } })),
  fc.record({ location: fc.record({ country: junk, region: junk, city: junk }), userAgent: junk }),
  fc.record({ products: junk, revenue: junk, price: junk, product_id: junk }),
  fc.date().map((d) => (Number.isNaN(d.getTime()) ? 'x' : d.toISOString())),
);
const segmentFields = [
  'type',
  'event',
  'name',
  'userId',
  'anonymousId',
  'messageId',
  'timestamp',
  'sentAt',
  'properties',
  'traits',
  'context',
  'integrations',
];

/** A Segment message, now and then with a field spoilt. */
const fuzzedSegmentMessage = fc.oneof(
  segmentMessage,
  fc
    .tuple(segmentMessage, fc.constantFrom(...segmentFields), segmentOddValue)
    .map(([message, field, value]): Record<string, unknown> => ({ ...message, [field]: value })),
);

const segmentBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .record(
        {
          batch: fc.oneof(
            { weight: 4, arbitrary: fc.array(fuzzedSegmentMessage, { minLength: 1, maxLength: 5 }) },
            { weight: 1, arbitrary: junk },
          ),
          writeKey: fc.oneof(fc.constant(SERVER_KEY), oddText, junk),
          context: fc.oneof(segmentOddValue, fc.constant({ library: { name: 'analytics-node' } })),
          sentAt: mostly(fc.constant(now)),
        },
        { requiredKeys: ['batch'] },
      )
      .map((o) => JSON.stringify(o) ?? ''),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fuzzedSegmentMessage, fc.option(mostly(fc.constant(SERVER_KEY))))
      .map(([m, key]) => JSON.stringify(key === null ? m : { ...m, writeKey: key }) ?? ''),
  },
  // Deeply nested messages, with and without a messageId (a missing one is made from the content).
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 100, max: 60_000 }), fc.boolean(), fc.boolean())
      .map(([depth, withId, batch]) => {
        const message = `{"type":"track","event":"x","anonymousId":"${VISITOR}",${withId ? '"messageId":"m-1",' : ''}"properties":${deep(depth)}}`;
        return batch ? `{"writeKey":"${SERVER_KEY}","batch":[${message}]}` : message;
      }),
  },
  // Many near-empty messages (the count limit).
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 3000 }).map((n) => `{"batch":[${Array(n).fill('{}').join(',')}]}`),
  },
  { weight: 2, arbitrary: anyBody },
);

const resendBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.constant(''),
  fc
    .record({ ids: fc.oneof(fc.array(mostly(fc.uuid()), { maxLength: 5 }), junk) })
    .map((o) => JSON.stringify(o) ?? ''),
  fc
    .record(
      {
        site: fc.oneof(siteArb, junk),
        limit: fc.oneof(fc.integer({ min: -5, max: 2000 }), fc.double(), junk),
        after: fc.oneof(
          mostly(fc.constantFrom('2026-11-30T00:00:00.000Z', '2026-11-30T00:00:00.000Z|x')),
          junk,
        ),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o) ?? ''),
  anyBody,
);

/** A hook body; `"__AT__"` becomes the time it is sent, so a share of hooks is fresh. */
const hookBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record(
        {
          source: fc.oneof(mostly(fc.constant('directus')), junk),
          collection: fc.oneof(
            mostly(
              fc.constantFrom('products', 'slot_content', 'trigger_rules', 'consent_categories', 'orders'),
            ),
            junk,
          ),
          event: fc.oneof(mostly(fc.constantFrom('items.update', 'items.create')), junk),
          keys: fc.oneof(fc.array(oddText, { maxLength: 4 }), junk),
          at: fc.oneof(
            { weight: 4, arbitrary: fc.constant('__AT__') },
            {
              weight: 2,
              arbitrary: fc.constantFrom(
                '2026-02-30T00:00:00Z',
                '0000-01-01T00:00:00Z',
                '2026-11-30T25:00:00Z',
                '2026-11-30T00:00:00+23:59',
                '2026-11-30T00:00:00.123456789Z',
              ),
            },
            { weight: 1, arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()) },
            { weight: 1, arbitrary: oddText },
            { weight: 1, arbitrary: junk },
          ),
        },
        { requiredKeys: ['source', 'collection', 'event', 'keys', 'at'] },
      )
      .map((o) => JSON.stringify(o) ?? ''),
  },
  { weight: 1, arbitrary: anyBody },
);

function bodyArb(content: fc.Arbitrary<string | Uint8Array>): fc.Arbitrary<Body> {
  const asText = (c: string | Uint8Array) => (typeof c === 'string' ? c : new TextDecoder().decode(c));
  return fc.oneof(
    {
      weight: 20,
      arbitrary: content.map(
        (c): Body => (typeof c === 'string' ? { kind: 'text', text: c } : { kind: 'bytes', bytes: c }),
      ),
    },
    { weight: 1, arbitrary: fc.constant<Body>({ kind: 'none' }) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(content, fc.boolean())
        .map(([c, truncate]): Body => ({ kind: 'gzip', text: asText(c), truncate })),
    },
    { weight: 1, arbitrary: content.map((c): Body => ({ kind: 'truncated', text: asText(c) })) },
  );
}

// ---------------------------------------------------------------------------------------
// The routes, each with what a valid caller sends.

export interface Target {
  route: string;
  methods: string[];
  segments: fc.Arbitrary<Segments>;
  query: fc.Arbitrary<string>;
  headers: fc.Arbitrary<HeaderSet>;
  body?: fc.Arbitrary<string | Uint8Array>;
  /** Share of the fuzz's requests aimed here. */
  weight: number;
}

const slotsArb = mostly(
  fc.constantFrom(
    'hero,recommendations,promo',
    'hero',
    'recommendations',
    ',',
    'HERO',
    'a'.repeat(65),
    Array.from({ length: 12 }, (_, i) => `s${i}`).join(','),
  ),
);
const decideQuery = queryArb({
  slots: slotsArb,
  writeKey: writeKeyArb,
  anonymousId: anonymousIdArb,
  userId: mostly(fc.constant('ada')),
  userIdSignature: mostly(
    fc.oneof(
      fc.constant('ada').map((id) => signatures.get(id) ?? ''),
      fc.constantFrom('0'.repeat(64), `${Math.floor(Date.now() / 1000) + 3600}.${'a'.repeat(64)}`, '1.x'),
    ),
  ),
  productId: mostly(fc.constantFrom('p1', 'trail-jacket', 'd-jacket')),
});
const firstPartyDecideQuery = queryArb({
  slots: slotsArb,
  productId: mostly(fc.constantFrom('p1', 'trail-jacket')),
});
const fixed = (...segments: string[]) => fc.constant(segments);
const none = fc.constant<HeaderSet>({});

/** Paths the fixture origin serves (not `/large`, which waits for the test to release it). */
const ORIGIN_PATHS = [
  '',
  'products/trail-jacket',
  'p/tent',
  'malformed',
  'app.js',
  'logo.png',
  'form',
  'account',
  'charset',
  'echo-encoding',
  'custom-encoded',
  'redirect',
  'api/signout',
  'echo-headers',
  'missing',
];
const UNKNOWN_PATHS = [
  'v1',
  'v1/colect',
  'v1/v1/people/user:x',
  'v2/collect',
  'attune',
  'attune/',
  'attune/nothing',
  'healthz/x',
  'v1/admin',
  'v1/hooks',
];

export const TARGETS: Target[] = [
  {
    route: 'GET /healthz',
    methods: ['GET', 'HEAD'],
    segments: fixed('healthz'),
    query: queryArb(),
    headers: none,
    weight: 1,
  },
  {
    route: 'POST /v1/collect',
    methods: ['POST'],
    segments: fixed('v1', 'collect'),
    query: queryArb(),
    headers: browserHeaders,
    body: collectBody,
    weight: 6,
  },
  {
    route: 'OPTIONS /v1/collect',
    methods: ['OPTIONS'],
    segments: fixed('v1', 'collect'),
    query: queryArb(),
    headers: browserHeaders,
    weight: 1,
  },
  ...(['batch', 'track', 'page', 'identify'] as const).map(
    (call): Target => ({
      route: `POST /v1/${call}`,
      methods: ['POST'],
      segments: fixed('v1', call),
      query: queryArb(),
      headers: serverHeaders,
      body: segmentBody,
      weight: 3,
    }),
  ),
  {
    route: 'GET /v1/config',
    methods: ['GET', 'HEAD'],
    segments: fixed('v1', 'config'),
    query: queryArb({ writeKey: writeKeyArb }),
    headers: browserHeaders,
    weight: 2,
  },
  {
    route: 'GET /v1/decide',
    methods: ['GET', 'HEAD'],
    segments: fixed('v1', 'decide'),
    query: decideQuery,
    headers: browserHeaders,
    weight: 5,
  },
  {
    route: 'OPTIONS /v1/decide',
    methods: ['OPTIONS'],
    segments: fixed('v1', 'decide'),
    query: queryArb({ writeKey: writeKeyArb }),
    headers: browserHeaders,
    weight: 1,
  },
  {
    route: 'GET|DELETE /v1/people/:id',
    methods: ['GET', 'GET', 'DELETE', 'HEAD'],
    segments: personKeyArb.map((key) => ['v1', 'people', encodeComponent(key)]),
    query: queryArb({ site: siteArb, scope: fc.oneof(fc.constant('edge'), fc.constant('edge'), oddText) }),
    headers: operatorHeaders,
    weight: 5,
  },
  {
    route: 'POST /v1/admin/dead-letters/resend',
    methods: ['POST'],
    segments: fixed('v1', 'admin', 'dead-letters', 'resend'),
    query: queryArb(),
    headers: operatorHeaders,
    body: resendBody,
    weight: 2,
  },
  {
    route: 'GET /v1/admin/stats',
    methods: ['GET'],
    segments: fixed('v1', 'admin', 'stats'),
    query: queryArb(),
    headers: operatorHeaders,
    weight: 1,
  },
  {
    route: 'POST /v1/admin/lift',
    methods: ['POST'],
    segments: fixed('v1', 'admin', 'lift'),
    query: queryArb({
      site: siteArb,
      days: mostly(fc.constantFrom('1', '28', '90', '0', '91', '1.5', '+5', ' 7', '007')),
    }),
    headers: operatorHeaders,
    weight: 2,
  },
  {
    route: 'POST /v1/admin/replay/:personKey',
    methods: ['POST'],
    segments: personKeyArb.map((key) => ['v1', 'admin', 'replay', encodeComponent(key)]),
    query: fc.oneof(queryArb({ site: siteArb }), queryArb({ siteId: siteArb })),
    headers: operatorHeaders,
    weight: 2,
  },
  {
    route: HOOK_ROUTE,
    methods: ['POST'],
    segments: fixed('v1', 'hooks', 'directus'),
    query: queryArb(),
    headers: fc.constant({ 'content-type': 'application/json' }),
    body: hookBody,
    weight: 3,
  },
  {
    route: 'GET /attune/attune.js',
    methods: ['GET', 'HEAD'],
    segments: fixed('attune', 'attune.js'),
    query: queryArb(),
    headers: pageHeaders,
    weight: 1,
  },
  {
    route: 'GET /attune/decide',
    methods: ['GET'],
    segments: fixed('attune', 'decide'),
    query: firstPartyDecideQuery,
    headers: firstPartyHeaders,
    weight: 2,
  },
  {
    route: 'GET /attune/v1/decide',
    methods: ['GET'],
    segments: fixed('attune', 'v1', 'decide'),
    query: firstPartyDecideQuery,
    headers: firstPartyHeaders,
    weight: 1,
  },
  {
    route: 'POST /attune/collect',
    methods: ['POST'],
    segments: fixed('attune', 'collect'),
    query: queryArb(),
    headers: firstPartyHeaders,
    body: collectBody,
    weight: 4,
  },
  {
    route: 'GET /attune/v1/config',
    methods: ['GET'],
    segments: fixed('attune', 'v1', 'config'),
    query: queryArb({ writeKey: writeKeyArb }),
    headers: firstPartyHeaders,
    weight: 1,
  },
  {
    route: 'proxy (origin pages)',
    methods: ['GET', 'GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'],
    segments: fc.constantFrom(...ORIGIN_PATHS).map((p) => p.split('/')),
    query: queryArb({ cs: fc.constantFrom('utf-8', 'utf-16', 'iso-2022-jp', 'bogus') }),
    headers: pageHeaders,
    body: anyBody,
    weight: 6,
  },
  {
    route: 'unknown paths',
    methods: ['GET', 'POST'],
    segments: fc.constantFrom(...UNKNOWN_PATHS).map((p) => p.split('/')),
    query: queryArb(),
    headers: none,
    body: anyBody,
    weight: 2,
  },
];

/** Every method a request can carry to the Worker (the runtime parses no others), the odd ones too. */
const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
  'SEARCH',
  'PURGE',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'REPORT',
];

/** How the request states its body's length: truthfully, not at all, or wrongly. */
export type LengthMode = 'match' | 'none' | 'smaller' | 'larger' | 'junk';
const lengthMode = fc.oneof(
  { weight: 8, arbitrary: fc.constant<LengthMode>('match') },
  { weight: 1, arbitrary: fc.constantFrom<LengthMode>('none', 'smaller', 'larger', 'junk') },
);

export interface FuzzRequest {
  route: string;
  method: string;
  path: string;
  query: string;
  headers: HeaderSet;
  lengthMode: LengthMode;
  junkLength: string;
  body: Body;
  /** Sign the body with HOOK_SECRET (a hook past its signature check). */
  signHook: boolean;
}

export const requestArb: fc.Arbitrary<FuzzRequest> = fc
  .oneof(...TARGETS.map((t) => ({ weight: t.weight, arbitrary: fc.constant(t) })))
  .chain((target) =>
    fc.record({
      route: fc.constant(target.route),
      method: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...target.methods) },
        { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
      ),
      path: target.segments.chain(pathArb),
      query: target.query,
      headers: fc.tuple(target.headers, spoiltHeaders).map(([valid, spoilt]) => ({ ...valid, ...spoilt })),
      lengthMode,
      junkLength: fc.constantFrom('-1', 'abc', '1e9', '99999999999999999999', ' 12 ', '0x10', '', '1.5'),
      body: target.body === undefined ? fc.constant<Body>({ kind: 'none' }) : bodyArb(target.body),
      signHook: fc.oneof(
        { weight: 3, arbitrary: fc.constant(true) },
        { weight: 1, arbitrary: fc.constant(false) },
      ),
    }),
  );
