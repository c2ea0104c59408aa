import { env as workerEnv } from 'cloudflare:workers';
import { eventMessagesOf, LIMITS, type ProfileMessage, QueueMessageSchema } from '@attune/shared-schema';
import { describe, expect, it, vi } from 'vitest';
import { signUserId, signUserIdUntil } from '../identity/index.ts';
import { exportProfile, viewProfile } from '../profile/client.ts';
import { ProfileDO } from '../profile/profile-do.ts';
import {
  ADMIN_TOKEN,
  anonId,
  call,
  collect,
  consentFor,
  envWithSites,
  gzip,
  IDENTITY_SECRET,
  makeEvent,
  ORIGIN,
  productView,
  SERVER_KEY,
  SITE,
  signed,
  useRecordedQueue,
  WRITE_KEY,
} from './test-support.ts';

const env = (): Env => workerEnv;

const queue = useRecordedQueue();

/** The demo site with the given rate limits (the others at their defaults). */
function withRateLimit(rateLimit: Record<string, number>): Env {
  return envWithSites([{ id: SITE, writeKey: WRITE_KEY, allowedOrigins: [ORIGIN], settings: { rateLimit } }]);
}

describe('health', () => {
  it('answers', async () => {
    const res = await call(null, { method: 'GET', path: '/healthz' });
    expect(res.status).toBe(200);
  });
});

describe('POST /v1/collect status codes', () => {
  it('200 when every event is accepted, with CORS for the allowed origin', async () => {
    const a = anonId();
    const res = await collect([makeEvent(a), productView(a, 'p1', 'shoes')]);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(await res.json()).toMatchObject({ accepted: 2, duplicates: 0, rejected: [] });
  });

  it('207 with per-event errors by index for a partly invalid batch, valid events still accepted', async () => {
    const a = anonId();
    const bad = { ...makeEvent(a, 'product.viewed'), properties: { productId: 42 } };
    const res = await collect([makeEvent(a), bad, { nonsense: true }]);
    expect(res.status).toBe(207);
    const body = (await res.json()) as {
      accepted: number;
      rejected: { index: number; errors: { path: string; message: string }[] }[];
    };
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(body.rejected[0]?.errors[0]?.path).toBe('batch[1].properties.productId');
    const view = await viewProfile(env(), SITE, `anon:${a}`);
    expect(view?.recentActions).toHaveLength(1);
  });

  it('400 for a body that is not JSON, an invalid envelope, or a batch with no valid event', async () => {
    expect((await call('{not json')).status).toBe(400);
    const envelope = await call(JSON.stringify({ writeKey: WRITE_KEY, batch: 'x' }));
    expect(envelope.status).toBe(400);
    expect(((await envelope.json()) as { error: { code: string } }).error.code).toBe('invalid_envelope');
    const none = await collect([{ id: 'nope' }]);
    expect(none.status).toBe(400);
  });

  it('401 for an unknown write key', async () => {
    const res = await collect([makeEvent(anonId())], { writeKey: 'pk_nobody' });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unknown_write_key');
  });

  it('403 for a foreign or missing Origin, without CORS headers, and nothing stored', async () => {
    const a = anonId();
    const res = await collect([makeEvent(a)], { origin: 'https://evil.example' });
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect((await collect([makeEvent(a)], { origin: null })).status).toBe(403);
    expect(await viewProfile(env(), SITE, `anon:${a}`)).toBeNull();
    expect(queue.messages).toHaveLength(0);
  });

  it('413 for a body over the byte limit and for too many events', async () => {
    const huge = 'x'.repeat(LIMITS.maxBatchBytes + 10);
    expect((await call(huge)).status).toBe(413);
    const a = anonId();
    const many = Array.from({ length: LIMITS.maxBatchEvents + 1 }, () => makeEvent(a));
    expect((await collect(many)).status).toBe(413);
  });

  it('reads a gzip body, as the Segment routes do; 415 naming any other encoding; 413 past the limit inflated', async () => {
    const a = anonId();
    const envelope = JSON.stringify({
      writeKey: WRITE_KEY,
      sentAt: new Date().toISOString(),
      batch: [makeEvent(a)],
    });
    const zipped = await call(await gzip(envelope), { headers: { 'content-encoding': 'gzip' } });
    expect(zipped.status).toBe(200);
    expect(await zipped.json()).toMatchObject({ accepted: 1 });

    const brotli = await call(envelope, { headers: { 'content-encoding': 'br' } });
    expect(brotli.status).toBe(415);
    expect(await brotli.json()).toMatchObject({
      error: {
        code: 'unsupported_encoding',
        message: expect.stringMatching(/"br".*send gzip or no encoding/),
      },
    });

    const bomb = await gzip(`{"batch":[${' '.repeat(LIMITS.maxBatchBytes + 10)}]}`);
    const big = await call(bomb, { headers: { 'content-encoding': 'gzip' } });
    expect(big.status).toBe(413);
  });

  it('429 with Retry-After when a visitor exceeds the rate limit', async () => {
    const tight = withRateLimit({ anonymousPerSecond: 0.01, anonymousBurst: 2 });
    const a = anonId('rl');
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await collect([makeEvent(a)], { env: tight, headers: { 'cf-connecting-ip': '203.0.113.9' } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another visitor is not affected.
    expect((await collect([makeEvent(anonId())], { env: tight })).status).toBe(200);
  });

  it('207 with Retry-After when a batch of two browsers has one rate limited', async () => {
    const tight = withRateLimit({ anonymousPerSecond: 0.01, anonymousBurst: 1 });
    const a = anonId('rl');
    const headers = { 'cf-connecting-ip': '203.0.113.10' };
    expect((await collect([makeEvent(a)], { env: tight, headers })).status).toBe(200);
    const res = await collect([makeEvent(a), makeEvent(anonId())], { env: tight, headers });
    expect(res.status).toBe(207);
    const body = (await res.json()) as { accepted: number; rejected: { index: number }[] };
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r) => r.index)).toEqual([0]);
    // The refused event is to be sent again: the sender must know when.
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('429 with Retry-After when one IP exceeds its limit, whoever the visitors are', async () => {
    const tight = withRateLimit({ ipPerSecond: 0.01, ipBurst: 3 });
    const ip = '198.51.100.77';
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 5; i++) {
      last = await collect([makeEvent(anonId())], { env: tight, headers: { 'cf-connecting-ip': ip } });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(
      (await collect([makeEvent(anonId())], { env: tight, headers: { 'cf-connecting-ip': '198.51.100.78' } }))
        .status,
    ).toBe(200);
  });

  it('lets concurrent requests from one IP use its whole burst, not one lease of it', async () => {
    // Burst 40: each lease is a block of 4 tokens. Ten requests arriving together each find
    // the isolate's lease empty and each lease a block; all of those tokens are the IP's.
    const tight = withRateLimit({ ipPerSecond: 0.01, ipBurst: 40 });
    const headers = { 'cf-connecting-ip': '198.51.100.90' };
    const wave = () =>
      Promise.all(Array.from({ length: 10 }, () => collect([makeEvent(anonId())], { env: tight, headers })));
    const statuses = [...(await wave()), ...(await wave()), ...(await wave())].map((r) => r.status);
    expect(statuses).toEqual(statuses.map(() => 200));
  });

  it('answers a CORS preflight only for allowed origins', async () => {
    const ok = await call(null, { method: 'OPTIONS' });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const no = await call(null, { method: 'OPTIONS', origin: 'https://evil.example' });
    expect(no.status).toBe(403);
  });
});

describe('consent gate per purpose', () => {
  const eventMessages = () => eventMessagesOf(queue.messages);

  it('analytics only: the event log gets it, no profile is built', async () => {
    const a = anonId();
    const res = await collect([
      productView(a, 'p1', 'shoes', { context: { consent: consentFor('analytics') } }),
    ]);
    expect(res.status).toBe(200);
    expect(eventMessages().map((m) => m.purposes)).toEqual([['analytics']]);
    const view = await viewProfile(env(), SITE, `anon:${a}`);
    expect(view?.interests ?? {}).toEqual({});
    expect(
      queue.messages.some((m) => m.kind === 'profile' || m.kind === 'covisit' || m.kind === 'covisits'),
    ).toBe(false);
  });

  it('personalization only: the profile learns, nothing reaches the event log', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes', { context: { consent: consentFor('personalization') } })]);
    expect(eventMessages()).toHaveLength(0);
    const view = await viewProfile(env(), SITE, `anon:${a}`);
    expect(view?.interests['category:shoes']).toBeCloseTo(1, 5);
    expect(queue.messages.filter((m) => m.kind === 'profile')).toHaveLength(1);
  });

  it('marketing only: forwarded for the promotions sink only', async () => {
    const a = anonId();
    await collect([makeEvent(a, 'page.viewed', { context: { consent: consentFor('marketing') } })]);
    expect(eventMessages().map((m) => m.purposes)).toEqual([['marketing']]);
  });

  it('nothing granted (or no consent at all): dropped and counted, nothing stored or sent', async () => {
    const a = anonId();
    const res = await collect([
      makeEvent(a, 'page.viewed', { consent: consentFor() }),
      makeEvent(a, 'page.viewed', { consent: null }),
    ]);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: 0, dropped: 2 });
    expect(queue.messages).toHaveLength(0);
    expect(await viewProfile(env(), SITE, `anon:${a}`)).toBeNull();
  });

  it('a category the site does not offer cannot be granted', async () => {
    const a = anonId();
    const forged = { categories: { necessary: true, everything: true }, policyVersion: '1' };
    const res = await collect([makeEvent(a, 'page.viewed', { context: { consent: forged } })]);
    expect(await res.json()).toMatchObject({ accepted: 0, dropped: 1 });
  });

  it('Sec-GPC: 1 turns marketing off', async () => {
    const a = anonId();
    const res = await collect(
      [makeEvent(a, 'page.viewed', { context: { consent: consentFor('marketing') } })],
      {
        headers: { 'sec-gpc': '1' },
      },
    );
    expect(await res.json()).toMatchObject({ accepted: 0, dropped: 1 });
    await collect(
      [makeEvent(a, 'page.viewed', { context: { consent: consentFor('analytics', 'marketing') } })],
      {
        headers: { 'sec-gpc': '1' },
      },
    );
    expect(eventMessages().map((m) => m.purposes)).toEqual([['analytics']]);
  });

  it('consent changes always send a consent record with proof, even with nothing granted', async () => {
    const a = anonId();
    const consent = makeEvent(a, 'consent.updated', {
      properties: {
        categories: { analytics: false, personalization: false, marketing: false },
        policyVersion: '1',
        source: 'banner',
      },
      consent: null,
    });
    const res = await collect([consent]);
    expect(res.status).toBe(200);
    const records = queue.messages.filter((m) => m.kind === 'consent');
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      kind: 'consent',
      siteId: SITE,
      personId: `anon:${a}`,
      eventId: consent.id,
      source: 'banner',
      consent: {
        categories: { necessary: true, analytics: false, personalization: false, marketing: false },
        policyVersion: '1',
      },
    });
  });

  it('withdrawing personalization forgets what the profile learned, at the edge and downstream', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    expect((await viewProfile(env(), SITE, `anon:${a}`))?.interests['category:shoes']).toBeGreaterThan(0);
    const before = queue.messages.filter((m): m is ProfileMessage => m.kind === 'profile');
    expect(before.at(-1)?.profile.interests['category:shoes']).toBeGreaterThan(0);
    queue.messages.length = 0;
    await collect([
      makeEvent(a, 'consent.updated', {
        properties: {
          categories: { analytics: true, personalization: false, marketing: false },
          policyVersion: '1',
        },
        consent: null,
      }),
    ]);
    const view = await viewProfile(env(), SITE, `anon:${a}`);
    expect(view?.interests).toEqual({});
    expect(view?.recentActions).toEqual([]);
    expect(view?.consent?.categories.personalization).toBe(false);
    // The cleared profile goes to Directus, so the people row no longer shows the interests.
    const after = queue.messages.filter((m): m is ProfileMessage => m.kind === 'profile');
    expect(after).toHaveLength(1);
    expect(after[0]?.profile.interests).toEqual({});
    expect(after[0]?.profile.consent?.categories.personalization).toBe(false);
  });
});

describe('verified identity', () => {
  it('accepts a userId with a valid HMAC and files the event under the person', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    const res = await collect([
      makeEvent(a, 'user.signed_in', { userId, userIdSignature: await signed(userId) }),
    ]);
    expect(res.status).toBe(200);
    const view = await viewProfile(env(), SITE, `user:${userId}`);
    expect(view?.userId).toBe(userId);
    expect(eventMessagesOf(queue.messages)[0]).toMatchObject({ personId: `user:${userId}` });
    // Checked, the signature is of no more use; kept, it would name the person from a queue
    // message, a dead letter in Directus or the ProfileDO's export for as long as it holds.
    const kept = JSON.stringify([queue.messages, await exportProfile(env(), SITE, `user:${userId}`)]);
    expect(kept).toContain(userId);
    expect(kept).not.toContain('userIdSignature');
  });

  it('accepts the signature in upper-case hex, as .NET and Java print it', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    const res = await collect([
      makeEvent(a, 'user.signed_in', { userId, userIdSignature: (await signed(userId)).toUpperCase() }),
    ]);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: 1, rejected: [] });
    expect((await viewProfile(env(), SITE, `user:${userId}`))?.userId).toBe(userId);
  });

  it('refuses a wrong signature and a missing one, with a clear error for that event only', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    const wrong = makeEvent(a, 'user.signed_in', { userId, userIdSignature: await signed('someone-else') });
    const missing = makeEvent(a, 'user.signed_in', { userId });
    const res = await collect([makeEvent(a), wrong, missing]);
    expect(res.status).toBe(207);
    const body = (await res.json()) as {
      accepted: number;
      rejected: { index: number; errors: { path: string; message: string }[] }[];
    };
    expect(body.accepted).toBe(1);
    expect(body.rejected[0]).toMatchObject({ index: 1, errors: [{ path: 'batch[1].userIdSignature' }] });
    expect(body.rejected[0]?.errors[0]?.message).toMatch(/does not match/);
    expect(body.rejected[1]).toMatchObject({ index: 2, errors: [{ path: 'batch[2].userId' }] });
    expect(body.rejected[1]?.errors[0]?.message).toMatch(/needs userIdSignature/);
    expect(await viewProfile(env(), SITE, `user:${userId}`)).toBeNull();
  });

  it('never echoes a malformed signature or write key back: says what is wrong and what to send', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    // A real signature with a stray character: most of a credential, which proxies and
    // loggers between the sender and the Worker may keep with the response.
    const signature = `${await signUserId(IDENTITY_SECRET, userId)}x`;
    const res = await collect([
      makeEvent(a),
      makeEvent(a, 'user.signed_in', { userId, userIdSignature: signature }),
    ]);
    expect(res.status).toBe(207);
    const text = await res.text();
    expect(text).not.toContain(signature.slice(0, 12));
    const body = JSON.parse(text) as { rejected: { errors: { path: string; message: string }[] }[] };
    expect(body.rejected[0]?.errors).toEqual([
      {
        path: 'batch[1].userIdSignature',
        message:
          'expected a 64-digit hex HMAC-SHA256 signature of the userId, or an expiring one: <expiry>.<64 hex digits>, received a string of 65 characters (not shown: it is a credential)',
      },
    ]);
    // A write key of the wrong type is not shown either; an ordinary field still is.
    const key = await call(JSON.stringify({ writeKey: 4242424242, batch: [makeEvent(a)] }));
    expect(key.status).toBe(400);
    const keyText = await key.text();
    expect(keyText).not.toContain('4242424242');
    expect((JSON.parse(keyText) as { error: { errors: unknown[] } }).error.errors).toEqual([
      { path: 'writeKey', message: 'expected string, received a number (not shown: it is a credential)' },
    ]);
    const plain = await collect([{ ...makeEvent(a), type: 'alias' }]);
    expect(await plain.text()).toContain('received string \\"alias\\"');
  });

  it('merges the anonymous profile into the person on the first verified identify; later anonymous events follow', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    await collect([productView(a, 'p1', 'shoes'), productView(a, 'p2', 'shoes')]);
    await collect([makeEvent(a, 'user.signed_in', { userId, userIdSignature: await signed(userId) })]);
    const person = await viewProfile(env(), SITE, `user:${userId}`);
    expect(person?.anonymousIds).toContain(a);
    expect(person?.interests['category:shoes']).toBeCloseTo(2, 3);
    expect(person?.recentActions.map((r) => r.name)).toEqual([
      'user.signed_in',
      'product.viewed',
      'product.viewed',
    ]);

    // Later anonymous events from the same browser land on the person.
    queue.messages.length = 0;
    await collect([productView(a, 'p3', 'hats')]);
    const after = await viewProfile(env(), SITE, `user:${userId}`);
    expect(after?.interests['category:hats']).toBeCloseTo(1, 3);
    expect(eventMessagesOf(queue.messages)[0]).toMatchObject({ personId: `user:${userId}` });
    // The anonymous key resolves to the person too.
    const viaAlias = await viewProfile(env(), SITE, `anon:${a}`);
    expect(viaAlias?.personKey).toBe(`user:${userId}`);
  });

  describe('a site taking expiring signatures (settings.identity.signatures)', () => {
    const expiringSite = () =>
      envWithSites([
        {
          id: SITE,
          writeKey: WRITE_KEY,
          allowedOrigins: [ORIGIN],
          settings: { identity: { signatures: 'expiring' } },
        },
      ]);
    const seconds = () => Math.floor(Date.now() / 1000);
    const until = (userId: string, expiry: number) => signUserIdUntil(IDENTITY_SECRET, userId, expiry);
    type Answer = {
      accepted: number;
      rejected: { index: number; errors: { path: string; message: string }[] }[];
    };

    it('a signature names the person until its expiry; after it, the events are the browser’s and still reach the person it signed in as', async () => {
      const a = anonId();
      const userId = `u-${anonId()}`;
      const signIn = await collect(
        [makeEvent(a, 'user.signed_in', { userId, userIdSignature: await until(userId, seconds() + 3600) })],
        { env: expiringSite() },
      );
      expect(await signIn.json()).toMatchObject({ accepted: 1, rejected: [] });
      expect((await viewProfile(env(), SITE, `user:${userId}`))?.anonymousIds).toContain(a);

      // The tab stayed open past the expiry: nothing refused, nothing lost, no user id taken from it.
      queue.messages.length = 0;
      const late = await collect(
        [productView(a, 'p1', 'shoes', { userId, userIdSignature: await until(userId, seconds() - 60) })],
        {
          env: expiringSite(),
        },
      );
      expect(late.status).toBe(200);
      expect(await late.json()).toMatchObject({ accepted: 1, rejected: [] });
      const [message] = eventMessagesOf(queue.messages);
      expect(message?.personId).toBe(`user:${userId}`);
      expect(message?.event.userId).toBeUndefined();
      expect(message?.event.userIdSignature).toBeUndefined();
      expect((await viewProfile(env(), SITE, `user:${userId}`))?.interests['category:shoes']).toBeCloseTo(
        1,
        3,
      );
    });

    it('an expired signature on a browser signed in as no one, or as someone else, is refused: the events are not theirs to keep', async () => {
      // A browser nobody signed in on: the user's events (their traits) would stay on a
      // browser's profile their own erasure never reaches.
      const a = anonId();
      const userId = `u-${anonId()}`;
      const alone = await collect(
        [
          makeEvent(a),
          makeEvent(a, 'user.identified', {
            userId,
            userIdSignature: await until(userId, seconds() - 1),
            traits: { email: 'x@example.com' },
          }),
          // The site's plain signature, made before it moved to expiring ones: expired too.
          productView(a, 'p1', 'shoes', {
            userId,
            userIdSignature: await signUserId(IDENTITY_SECRET, userId),
          }),
          // A choice made at the browser is the browser's own: a withdrawal is never refused.
          makeEvent(a, 'consent.updated', {
            userId,
            userIdSignature: await until(userId, seconds() - 1),
            properties: {
              categories: consentFor('analytics').categories,
              policyVersion: '1',
              source: 'banner',
            },
            consent: consentFor('analytics'),
          }),
        ],
        { env: expiringSite() },
      );
      expect(alone.status).toBe(207);
      const body = (await alone.json()) as Answer;
      expect(body).toMatchObject({ accepted: 2 });
      expect((await viewProfile(env(), SITE, `anon:${a}`))?.consent?.categories).toMatchObject({
        analytics: true,
        personalization: false,
      });
      expect(body.rejected.map((r) => [r.index, r.errors[0]?.path])).toEqual([
        [1, 'batch[1].userIdSignature'],
        [2, 'batch[2].userIdSignature'],
      ]);
      expect(body.rejected[0]?.errors[0]?.message).toMatch(
        /expired, and this browser is not signed in as that user/,
      );
      expect(await viewProfile(env(), SITE, `user:${userId}`)).toBeNull();
      expect((await viewProfile(env(), SITE, `anon:${a}`))?.interests['category:shoes']).toBeUndefined();
      expect(JSON.stringify(queue.messages)).not.toContain('x@example.com');

      // A shared computer: Y signed in on browser b, then X, whose events are X's (b stays
      // Y's). Once X's signature has expired, X's events must not become Y's.
      const b = anonId();
      const y = `u-${anonId()}`;
      const x = `u-${anonId()}`;
      await collect(
        [makeEvent(b, 'user.signed_in', { userId: y, userIdSignature: await until(y, seconds() + 3600) })],
        {
          env: expiringSite(),
        },
      );
      await collect(
        [makeEvent(b, 'user.signed_in', { userId: x, userIdSignature: await until(x, seconds() + 3600) })],
        {
          env: expiringSite(),
        },
      );
      queue.messages.length = 0;
      const late = await collect(
        [
          makeEvent(b, 'user.identified', {
            userId: x,
            userIdSignature: await until(x, seconds() - 60),
            traits: { email: 'x@example.com' },
          }),
          productView(b, 'p2', 'hats', { userId: x, userIdSignature: await until(x, seconds() - 60) }),
        ],
        { env: expiringSite() },
      );
      expect(late.status).toBe(400);
      const person = await viewProfile(env(), SITE, `user:${y}`);
      expect(person?.anonymousIds).toContain(b);
      expect(person?.interests['category:hats']).toBeUndefined();
      expect(JSON.stringify(person)).not.toContain('x@example.com');
      expect(queue.messages).toEqual([]);
    });

    it('refuses a moved expiry and a plain signature it cannot verify, saying which form the site takes', async () => {
      const a = anonId();
      const userId = `u-${anonId()}`;
      const [, hex] = (await until(userId, seconds() - 60)).split('.');
      const res = await collect(
        [
          makeEvent(a),
          makeEvent(a, 'user.signed_in', { userId, userIdSignature: `${seconds() + 3600}.${hex}` }),
          makeEvent(a, 'user.signed_in', { userId, userIdSignature: await signed('someone-else') }),
        ],
        { env: expiringSite() },
      );
      expect(res.status).toBe(207);
      const body = (await res.json()) as Answer;
      expect(body.rejected.map((r) => r.errors[0]?.path)).toEqual([
        'batch[1].userIdSignature',
        'batch[2].userIdSignature',
      ]);
      for (const r of body.rejected)
        expect(r.errors[0]?.message).toMatch(/this site takes expiring signatures only/);
      expect(await viewProfile(env(), SITE, `user:${userId}`)).toBeNull();
    });

    it('a site taking plain signatures (the default) takes the plain HMAC and refuses the expiring form, saying how to turn it on', async () => {
      const plainSite = envWithSites(
        [{ id: SITE, writeKey: WRITE_KEY, allowedOrigins: [ORIGIN] }].map((site) => ({
          ...site,
          settings: { identity: { signatures: 'plain' } },
        })),
      );
      const a = anonId();
      const userId = `u-${anonId()}`;
      const other = `u-${anonId()}`;
      const res = await collect(
        [
          makeEvent(a, 'user.signed_in', {
            userId,
            userIdSignature: await signUserId(IDENTITY_SECRET, userId),
          }),
          makeEvent(anonId(), 'user.signed_in', {
            userId: other,
            userIdSignature: await until(other, seconds() + 3600),
          }),
        ],
        { env: plainSite },
      );
      expect(res.status).toBe(207);
      const body = (await res.json()) as Answer;
      expect(body).toMatchObject({ accepted: 1, rejected: [{ index: 1 }] });
      expect(body.rejected[0]?.errors[0]?.message).toMatch(
        /this site takes plain signatures; expiring ones are turned on by its settings.identity.signatures/,
      );
      expect((await viewProfile(env(), SITE, `user:${userId}`))?.anonymousIds).toContain(a);
      expect(await viewProfile(env(), SITE, `user:${other}`)).toBeNull();
    });
  });

  it('a server producer authenticated with the server key may send user ids without a signature', async () => {
    const userId = `u-${anonId()}`;
    const res = await collect(
      [
        makeEvent(`server:${userId}`, 'order.completed', {
          userId,
          properties: { orderId: 'o1', total: 10 },
        }),
      ],
      {
        origin: null,
        headers: { authorization: `Basic ${btoa(`${SERVER_KEY}:`)}` },
      },
    );
    expect(res.status).toBe(200);
    expect((await viewProfile(env(), SITE, `user:${userId}`))?.counters.orders).toBe(1);
  });
});

describe('a refund', () => {
  it("is taken from the site's server only: a browser cannot take back its own purchases", async () => {
    const a = anonId();
    const order = makeEvent(a, 'order.completed', { properties: { orderId: 'o-1', total: 600 } });
    const refund = makeEvent(a, 'order.refunded', { properties: { orderId: 'o-1' } });
    expect(await (await collect([order])).json()).toMatchObject({ accepted: 1 });
    const res = await collect([refund]);
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { errors: { path: string; message: string }[] } };
    expect(error.errors).toEqual([{ path: 'batch[0].name', message: expect.stringContaining('server key') }]);
    expect((await viewProfile(env(), SITE, `anon:${a}`))?.counters).toMatchObject({
      orders: 1,
      revenue: 600,
    });
    // The same refund from the shop's backend, with the server key, is taken.
    const fromServer = await collect([refund], {
      origin: null,
      headers: { authorization: `Basic ${btoa(`${SERVER_KEY}:`)}` },
    });
    expect(await fromServer.json()).toMatchObject({ accepted: 1 });
    expect((await viewProfile(env(), SITE, `anon:${a}`))?.counters).toMatchObject({ orders: 0, revenue: 0 });
  });
});

describe('dedupe and order', () => {
  it('a client retry of the same batch is counted as duplicates, not applied twice', async () => {
    const a = anonId();
    const batch = [
      productView(a, 'p1', 'shoes'),
      makeEvent(a, 'cart.item.added', { properties: { productId: 'p1', category: 'shoes' } }),
    ];
    const first = await collect(batch);
    expect(await first.json()).toMatchObject({ accepted: 2, duplicates: 0 });
    const events1 = eventMessagesOf(queue.messages).length;
    const retry = await collect(batch);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toMatchObject({ accepted: 0, duplicates: 2 });
    expect(eventMessagesOf(queue.messages).length).toBe(events1);
    const view = await viewProfile(env(), SITE, `anon:${a}`);
    expect(view?.counters['product.viewed']).toBe(1);
    expect(view?.interests['category:shoes']).toBeCloseTo(4, 3);
  });

  it('the same id twice within one batch is applied once', async () => {
    const a = anonId();
    const e = productView(a, 'p1', 'shoes');
    const res = await collect([e, e]);
    expect(await res.json()).toMatchObject({ accepted: 1, duplicates: 1 });
  });

  it("applies a person's events in the order sent, across concurrent requests", async () => {
    const a = anonId();
    const add = (id: string) => makeEvent(a, 'cart.item.added', { properties: { productId: id } });
    const remove = (id: string) => makeEvent(a, 'cart.item.removed', { properties: { productId: id } });
    await collect([add('p1'), remove('p1'), add('p1'), add('p2'), remove('p2')]);
    const view = await viewProfile(env(), SITE, `anon:${a}`);
    expect(view?.cart).toEqual(['p1']);
    expect(view?.recentActions.map((r) => r.name)).toEqual([
      'cart.item.removed',
      'cart.item.added',
      'cart.item.added',
      'cart.item.removed',
      'cart.item.added',
    ]);
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        collect([makeEvent(a, 'page.viewed', { properties: { title: `t${i}` } })]),
      ),
    );
    expect((await viewProfile(env(), SITE, `anon:${a}`))?.counters['page.viewed']).toBe(5);
  });
});

describe('queue messages', () => {
  it('carry the event, enrichment, purposes, person and the caller traceparent; all pass the consumer schema', async () => {
    const a = anonId();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const sentAt = new Date(Date.now() + 60_000).toISOString();
    const view = productView(a, 'p1', 'shoes', { timestamp: sentAt, sessionId: 's1' });
    const next = productView(a, 'p2', 'shoes', { timestamp: sentAt, sessionId: 's1' });
    const res = await collect([view, next], {
      sentAt,
      headers: {
        traceparent,
        'user-agent':
          'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
      },
    });
    expect(res.status).toBe(200);
    for (const m of queue.messages) expect(QueueMessageSchema.safeParse(m).success).toBe(true);
    // Both events travel in one message for their person and purposes.
    expect(queue.messages.filter((m) => m.kind === 'event')).toEqual([]);
    expect(queue.messages.filter((m) => m.kind === 'events')).toHaveLength(1);
    const events = eventMessagesOf(queue.messages);
    expect(events).toHaveLength(2);
    expect(events[1]?.event).toEqual(next);
    const first = events[0];
    expect(first).toMatchObject({
      siteId: SITE,
      personId: `anon:${a}`,
      purposes: ['analytics', 'personalization', 'marketing'],
      traceparent,
    });
    expect(first?.event).toEqual(view);
    expect(first?.enrichment).toMatchObject({ device: 'mobile', os: 'iOS', browser: 'Safari' });
    expect(JSON.stringify(first?.enrichment)).not.toMatch(/Mozilla|iPhone OS/);
    // The client clock was a minute fast: the corrected time is about the receive time.
    const corrected = Date.parse(first?.enrichment.correctedTimestamp ?? '');
    expect(Math.abs(corrected - Date.parse(first?.enrichment.receivedAt ?? ''))).toBeLessThan(5_000);

    // The request's "viewed next" pairs travel in one message.
    expect(queue.messages.filter((m) => m.kind === 'covisit' || m.kind === 'covisits')).toEqual([
      { kind: 'covisits', siteId: SITE, pairs: [{ from: 'p1', to: 'p2', at: expect.any(String) }] },
    ]);
    const profiles = queue.messages.filter((m) => m.kind === 'profile');
    expect(profiles).toHaveLength(1);
    expect(profiles[0]).toMatchObject({ personId: `anon:${a}`, traceparent, profile: { anonymousIds: [a] } });
  });

  it('keep a batch from a device whose clock is three days ahead, at its true time', async () => {
    const a = anonId();
    const ahead = Date.now() + 3 * 24 * 60 * 60_000;
    const view = productView(a, 'p1', 'shoes', { timestamp: new Date(ahead - 60_000).toISOString() });
    const res = await collect([view], { sentAt: new Date(ahead).toISOString() });
    expect(res.status).toBe(200);
    const [message] = eventMessagesOf(queue.messages);
    expect(message?.event).toEqual(view);
    const age =
      Date.parse(message?.enrichment.receivedAt ?? '') -
      Date.parse(message?.enrichment.correctedTimestamp ?? '');
    expect(Math.abs(age - 60_000)).toBeLessThan(5_000);
  });

  it("splits a run's events by purposes, in order; each event keeps its own purposes; consent-dropped ones are not sent", async () => {
    const a = anonId();
    const analytics = makeEvent(a, 'page.viewed', { consent: consentFor('analytics') });
    const nothing = makeEvent(a, 'page.viewed', { consent: consentFor() });
    const both = makeEvent(a, 'page.viewed', { consent: consentFor('analytics', 'marketing') });
    const again = makeEvent(a, 'page.viewed', { consent: consentFor('analytics', 'marketing') });
    const res = await collect([analytics, nothing, both, again]);
    expect(await res.json()).toMatchObject({ accepted: 3, dropped: 1 });
    const batches = queue.messages.filter((m) => m.kind === 'events');
    expect(batches.map((m) => [m.purposes, m.events.map((e) => e.event.id)])).toEqual([
      [['analytics'], [analytics.id]],
      [
        ['analytics', 'marketing'],
        [both.id, again.id],
      ],
    ]);
    expect(eventMessagesOf(queue.messages).map((m) => [m.event.id, m.purposes, m.personId])).toEqual([
      [analytics.id, ['analytics'], `anon:${a}`],
      [both.id, ['analytics', 'marketing'], `anon:${a}`],
      [again.id, ['analytics', 'marketing'], `anon:${a}`],
    ]);
  });

  // Eight events of about 28 KB of JSON each: far more than one 64 KB events message holds.
  // Control characters are one character each but six bytes of JSON (`\u0001`): messages
  // are sized by bounds, which must hold for them too.
  it.each([
    ['digits', (i: number) => `${i}`.repeat(4000)],
    ['control characters', (i: number) => String.fromCharCode(1 + i).repeat(660)],
  ])(
    'splits large events (%s) over several messages under the Queues size limits, none lost',
    async (_, text) => {
      const a = anonId();
      const bulky = Array.from({ length: 8 }, (_, i) =>
        makeEvent(a, 'page.viewed', {
          properties: Object.fromEntries(Array.from({ length: 7 }, (_, k) => [`k${k}`, text(i)])),
        }),
      );
      const res = await collect(bulky);
      expect(await res.json()).toMatchObject({ accepted: 8 });
      const batches = queue.messages.filter((m) => m.kind === 'events');
      expect(batches.length).toBeGreaterThan(1);
      for (const m of batches) {
        expect(new TextEncoder().encode(JSON.stringify(m)).byteLength).toBeLessThanOrEqual(64 * 1024);
        expect(QueueMessageSchema.safeParse(m).success).toBe(true);
      }
      expect(eventMessagesOf(queue.messages).map((m) => m.event)).toEqual(bulky);
    },
  );

  it('makes a traceparent when the request has none', async () => {
    await collect([makeEvent(anonId())]);
    const m = eventMessagesOf(queue.messages)[0];
    expect(m?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});

describe('GET /v1/admin/stats', () => {
  it('needs the admin token and counts outcomes', async () => {
    expect((await call(null, { method: 'GET', path: '/v1/admin/stats', origin: null })).status).toBe(401);
    const a = anonId();
    await collect([makeEvent(a), { bad: 1 }, makeEvent(a, 'page.viewed', { consent: consentFor() })]);
    const res = await call(null, {
      method: 'GET',
      path: '/v1/admin/stats',
      origin: null,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const { counters } = (await res.json()) as { counters: Record<string, number> };
    for (const k of ['accepted', 'invalid', 'duplicate', 'consent_dropped', 'rate_limited', 'suppressed']) {
      expect(typeof counters[k]).toBe('number');
    }
    expect(counters.accepted).toBeGreaterThan(0);
    expect(counters.invalid).toBeGreaterThan(0);
    expect(counters.consent_dropped).toBeGreaterThan(0);
  });
});

describe('a batch one of whose browsers cannot be applied', () => {
  it("still forwards the other browsers' events, once, and the retry forwards the rest", async () => {
    const [bad, ok] = [anonId('bad'), anonId('ok')];
    const batch = [productView(bad, 'p1', 'shoes'), productView(ok, 'p2', 'hats')];
    // The first browser's object is unavailable (overloaded, reset) for this request.
    const unavailable = vi
      .spyOn(ProfileDO.prototype, 'ingest')
      .mockRejectedValueOnce(new Error('object unavailable'));
    const first = await collect(batch);
    expect(first.status).toBe(500);
    unavailable.mockRestore();
    // The client sends the batch again, as the SDK does after a 5xx.
    const retried = await collect(batch);
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ accepted: 1, duplicates: 1 });
    await vi.waitFor(() => {
      const ids = eventMessagesOf(queue.messages).map((m) => m.event.anonymousId);
      expect(ids.toSorted()).toEqual([bad, ok].toSorted());
    });
  });
});
