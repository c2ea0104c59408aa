import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { type DecideResponse, eventMessagesOf } from '@attune/shared-schema';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from '../catalog/index.ts';
import { signUserId, signUserIdForBrowser, signUserIdUntil } from '../identity/index.ts';
import {
  call,
  collect,
  envWithSites,
  makeEvent,
  productView,
  recordQueue,
  signed,
  storedTables,
} from '../ingest/test-support.ts';
import { exportProfile, profileStub } from '../profile/client.ts';
import { addedToCart, anonymousIdInGroup, seedPerson, viewed } from './fixtures/people.ts';
import { isInHoldout } from './holdout.ts';

const SITE_ORIGIN = 'http://localhost:3000';
const decideUrl = (query: string) => `http://attune.test/v1/decide?writeKey=pk_demo_attune&${query}`;
const get = (query: string, headers: Record<string, string> = { origin: SITE_ORIGIN }) =>
  exports.default.fetch(decideUrl(query), { headers });

/** The demo site taking `signatures` (its settings.identity.signatures). */
const siteTaking = (signatures: string) =>
  envWithSites([
    {
      id: 'demo',
      writeKey: 'pk_demo_attune',
      allowedOrigins: [SITE_ORIGIN],
      settings: { identity: { signatures } },
    },
  ]);

beforeAll(async () => {
  await putCatalogSnapshot(env, FIXTURE_CATALOG);
});

describe('GET /v1/decide without personalization consent', () => {
  it('serves the defaults, says why, and is private and CORS-enabled for the site', async () => {
    const anonymousId = anonymousIdInGroup('no-consent', false);
    await seedPerson(env, `anon:${anonymousId}`, { analytics: true, personalization: false }, [
      viewed('trail-jacket', 'outdoor', ['jacket']),
    ]);
    const res = await get(`slots=hero,recommendations,promo&anonymousId=${anonymousId}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(SITE_ORIGIN);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    const body = await res.json<DecideResponse>();
    expect(body.personalized).toBe(false);
    expect(body.decisions.hero).toMatchObject({
      variant: 'hero-default',
      kind: 'banner',
      reason: 'default: personalization not granted',
      holdout: false,
    });
    expect(body.decisions.recommendations?.items?.map((i) => i.id)).toEqual([
      'espresso-beans',
      'filter-beans',
      'trail-jacket',
      'hiking-boots',
    ]);
    expect(body.decisions.promo?.variant).toBe('promo-default');
  });

  it('treats an unknown visitor like one without consent, and stores nothing for them', async () => {
    const body = await (await get('slots=hero&anonymousId=never-seen-before')).json<DecideResponse>();
    expect(body.personalized).toBe(false);
    expect(body.decisions.hero?.variant).toBe('hero-default');
    // Anyone can make up anonymous ids: reading one must not leave an object behind
    // (empty tables would never be deleted: only events set the retention alarm).
    const tables = await runInDurableObject(profileStub(env, 'demo', 'anon:never-seen-before'), (_o, state) =>
      storedTables(state),
    );
    expect(tables).toEqual([]);
  });
});

describe('GET /v1/decide with personalization consent', () => {
  it('chooses content by interest and recommends with reasons, excluding the cart', async () => {
    const anonymousId = anonymousIdInGroup('consented', false);
    await seedPerson(env, `anon:${anonymousId}`, { analytics: true, personalization: true }, [
      viewed('trail-jacket', 'outdoor', ['jacket', 'waterproof']),
      viewed('hiking-boots', 'outdoor', ['boots', 'waterproof']),
      viewed('rain-shell', 'outdoor', ['jacket', 'waterproof']),
      addedToCart('rain-shell', 'outdoor', ['jacket', 'waterproof']),
    ]);
    const body = await (
      await get(`slots=hero,recommendations&anonymousId=${anonymousId}`)
    ).json<DecideResponse>();
    expect(body.personalized).toBe(true);
    expect(body.decisions.hero).toMatchObject({ variant: 'hero-outdoor', holdout: false });
    expect(body.decisions.hero?.reason).toMatch(/^interest in (outdoor|waterproof)$/);
    const items = body.decisions.recommendations?.items ?? [];
    // The rule recommends up to 3 accessories.
    expect(items).toHaveLength(3);
    expect(items.map((i) => i.id)).not.toContain('rain-shell');
    expect(items.every((i) => i.reason.length > 0)).toBe(true);
    // The rain shell in the cart fires the outdoor trigger rule: its accessories lead.
    expect(items.map((i) => i.category)).toEqual(Array(items.length).fill('outdoor-accessories'));
    expect(items.every((i) => i.reason === 'goes with your Rain Shell')).toBe(true);
  });

  it('shows the promo code a trigger offered the person in the promo slot, under marketing', async () => {
    const anonymousId = anonymousIdInGroup('promo-buyer', false);
    const all = {
      categories: { analytics: true, personalization: true, marketing: true },
      policyVersion: '1',
    };
    // The fixture rule outdoor-accessories offers a TRAIL promo on a cart add of category outdoor.
    await collect([
      makeEvent(anonymousId, 'consent.updated', { properties: all, consent: null }),
      makeEvent(anonymousId, 'cart.item.added', {
        properties: { productId: 'trail-jacket', category: 'outdoor' },
        consent: all,
      }),
    ]);
    const offered = (await exportProfile(env, 'demo', `anon:${anonymousId}`)).profile?.promo;
    expect(offered?.code).toMatch(/^TRAIL-/);
    const body = await (await get(`slots=promo&anonymousId=${anonymousId}`)).json<DecideResponse>();
    expect(body.decisions.promo).toMatchObject({
      kind: 'promo',
      variant: 'offer:outdoor-accessories',
      title: '10 % off',
      promoCode: offered?.code,
    });
  });

  it('recommends by interest and recent views, at most two per category', async () => {
    const anonymousId = anonymousIdInGroup('browser', false);
    await seedPerson(env, `anon:${anonymousId}`, { personalization: true }, [
      viewed('trail-jacket', 'outdoor', ['jacket', 'waterproof']),
      viewed('hiking-boots', 'outdoor', ['boots', 'waterproof']),
    ]);
    const body = await (
      await get(`slots=recommendations&anonymousId=${anonymousId}&productId=hiking-boots`)
    ).json<DecideResponse>();
    const items = body.decisions.recommendations?.items ?? [];
    expect(items).toHaveLength(4);
    expect(items.map((i) => i.id)).not.toContain('hiking-boots');
    expect(items.filter((i) => i.category === 'outdoor').length).toBe(2);
    expect(items[0]?.category).toBe('outdoor');
    expect(items.every((i) => i.reason !== 'popular right now')).toBe(true);
  });

  it('serves the held-out person the defaults and says so', async () => {
    const anonymousId = anonymousIdInGroup('held', true);
    await seedPerson(env, `anon:${anonymousId}`, { personalization: true }, [viewed('grinder', 'coffee')]);
    const body = await (await get(`slots=hero&anonymousId=${anonymousId}`)).json<DecideResponse>();
    expect(body.personalized).toBe(false);
    expect(body.decisions.hero).toMatchObject({
      variant: 'hero-default',
      holdout: true,
      reason: 'default: holdout group',
    });
  });

  it('keeps a held-out visitor in the holdout when they sign in', async () => {
    const anonymousId = anonymousIdInGroup('held-signin', true);
    let userId = 'held-signin-customer-0';
    for (let i = 1; isInHoldout(`user:${userId}`, 10); i++) userId = `held-signin-customer-${i}`;
    await seedPerson(env, `anon:${anonymousId}`, { personalization: true }, [viewed('grinder', 'coffee')]);
    // The browser signs in: its profile is handed to the person, whose key alone is not held out.
    const signIn = await collect([
      productView(anonymousId, 'moka-pot', 'coffee', { userId, userIdSignature: await signed(userId) }),
    ]);
    expect(signIn.status).toBe(200);
    const body = await (await get(`slots=hero&anonymousId=${anonymousId}`)).json<DecideResponse>();
    expect(body.decisions.hero).toMatchObject({ holdout: true, reason: 'default: holdout group' });
  });

  it('trusts a userId only with a valid signature', async () => {
    const userId = 'customer-42';
    const signature = await signed(userId);
    await seedPerson(env, `user:${userId}`, { personalization: true }, [
      viewed('grinder', 'coffee', ['equipment']),
      viewed('moka-pot', 'coffee', ['equipment']),
    ]);
    const asPerson = await (
      await get(`slots=hero&anonymousId=fresh-device-1&userId=${userId}&userIdSignature=${signature}`)
    ).json<DecideResponse>();
    const forged = await (
      await get(`slots=hero&anonymousId=fresh-device-1&userId=${userId}&userIdSignature=${'0'.repeat(64)}`)
    ).json<DecideResponse>();
    // The signed person's group decides what they see; either way it is their own profile.
    expect(asPerson.decisions.hero?.reason).not.toBe('default: personalization not granted');
    expect(forged.decisions.hero?.reason).toBe('default: personalization not granted');
  });

  it("records a signed-in decision under one of the person's own browsers, never a browser the caller names", async () => {
    const userId = `served-browser-${crypto.randomUUID()}`;
    const signature = await signed(userId);
    const own = `own-${crypto.randomUUID()}`;
    const signIn = await collect([
      makeEvent(own, 'consent.updated', {
        userId,
        userIdSignature: signature,
        properties: { categories: { analytics: true, personalization: true }, policyVersion: '1' },
        consent: null,
      }),
    ]);
    expect(signIn.status).toBe(200);
    const recorded = recordQueue(env);
    try {
      // Each exposure (person, slot, variant) is logged once in a while: a slot per call.
      const servedTo = async (anonymousId: string, slot: string) => {
        recorded.messages.length = 0;
        const res = await call(null, {
          method: 'GET',
          origin: SITE_ORIGIN,
          path: `/v1/decide?writeKey=pk_demo_attune&slots=${slot}&anonymousId=${anonymousId}&userId=${userId}&userIdSignature=${signature}`,
        });
        expect(res.status).toBe(200);
        return eventMessagesOf(recorded.messages).map((m) => [m.personId, m.event.anonymousId]);
      };
      // Anyone holding the signature (it travels in page URLs) names someone else's browser:
      // the log would say that browser signed in as the person, and lift would file its
      // anonymous events under them.
      expect(await servedTo('someone-elses-browser', 'hero')).toEqual([[`user:${userId}`, own]]);
      expect(await servedTo(own, 'recommendations')).toEqual([[`user:${userId}`, own]]);
    } finally {
      recorded.restore();
    }
  });

  it('on a site taking expiring signatures, a userId counts until its signature expires', async () => {
    const userId = 'customer-43';
    const seconds = Math.floor(Date.now() / 1000);
    await seedPerson(env, `user:${userId}`, { personalization: true }, [
      viewed('grinder', 'coffee', ['equipment']),
    ]);
    const expiringSite = siteTaking('expiring');
    const decideAs = async (signature: string) => {
      const res = await call(null, {
        method: 'GET',
        origin: SITE_ORIGIN,
        path: `/v1/decide?writeKey=pk_demo_attune&slots=hero&anonymousId=fresh-device-2&userId=${userId}&userIdSignature=${signature}`,
        env: expiringSite,
      });
      return (await res.json<DecideResponse>()).decisions.hero?.reason;
    };
    const secret = 'test-identity-secret';
    expect(await decideAs(await signUserIdUntil(secret, userId, seconds + 3600))).not.toBe(
      'default: personalization not granted',
    );
    // Expired, and the site's plain form: the browser decides, and it has no profile.
    expect(await decideAs(await signUserIdUntil(secret, userId, seconds - 60))).toBe(
      'default: personalization not granted',
    );
    expect(await decideAs(await signUserId(secret, userId))).toBe('default: personalization not granted');
  });

  it('on a site taking browser-bound signatures, a userId counts only with the anonymousId its signature covers', async () => {
    const userId = 'customer-44';
    const seconds = Math.floor(Date.now() / 1000);
    await seedPerson(env, `user:${userId}`, { personalization: true }, [
      viewed('grinder', 'coffee', ['equipment']),
    ]);
    const boundSite = siteTaking('bound');
    const decideAs = async (signature: string, browser: string | undefined) => {
      const anonymous = browser === undefined ? '' : `&anonymousId=${browser}`;
      const res = await call(null, {
        method: 'GET',
        origin: SITE_ORIGIN,
        path: `/v1/decide?writeKey=pk_demo_attune&slots=hero${anonymous}&userId=${userId}&userIdSignature=${signature}`,
        env: boundSite,
      });
      return (await res.json<DecideResponse>()).decisions.hero?.reason;
    };
    const secret = 'test-identity-secret';
    const forDevice3 = await signUserIdForBrowser(secret, userId, 'fresh-device-3', seconds + 3600);
    expect(await decideAs(forDevice3, 'fresh-device-3')).not.toBe('default: personalization not granted');
    // Another browser, or none, is not what the site signed: the browser decides, and it has no profile.
    expect(await decideAs(forDevice3, 'fresh-device-4')).toBe('default: personalization not granted');
    expect(await decideAs(forDevice3, undefined)).toBe('default: personalization not granted');
    // The unbound expiring form names no one here.
    expect(await decideAs(await signUserIdUntil(secret, userId, seconds + 3600), 'fresh-device-3')).toBe(
      'default: personalization not granted',
    );
  });

  it('a userId that does not verify changes nothing: a failing ProfileDO still gives the defaults, not a 500', async () => {
    // Every call to a person's object fails (an overloaded or broken Durable Object).
    const failing = {
      idFromName: (name: string) => env.PROFILE.idFromName(name),
      get: () =>
        new Proxy({}, { get: () => () => Promise.reject(new Error('Durable Object is overloaded')) }),
    };
    const decideWith = async (query: string) => {
      const ctx = createExecutionContext();
      const res = await createApp().fetch(
        new Request(decideUrl(query), { headers: { origin: SITE_ORIGIN } }),
        { ...env, PROFILE: failing } as unknown as Env,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return res;
    };
    for (const query of [
      'slots=hero&anonymousId=device-abc',
      // Before, an unsigned or wrongly signed user id looked up the browser's alias first,
      // outside the decision budget, and that failure answered 500.
      'slots=hero&anonymousId=device-abc&userId=customer-42',
      `slots=hero&anonymousId=device-abc&userId=customer-42&userIdSignature=${'0'.repeat(64)}`,
    ]) {
      const res = await decideWith(query);
      expect(res.status).toBe(200);
      expect((await res.json<DecideResponse>()).decisions.hero?.variant).toBe('hero-default');
    }
  });
});

describe('GET /v1/decide rejects bad requests with readable errors', () => {
  it.each([
    ['anonymousId=a', 400, 'slots'],
    ['slots=Hero!&anonymousId=a', 400, 'slots'],
    ['slots=,&anonymousId=a', 400, 'slots'],
    ['slots=%20,%20&anonymousId=a', 400, 'slots'],
    [`slots=${Array.from({ length: 11 }, (_, i) => `s${i}`).join(',')}`, 400, 'slots'],
    [`slots=hero&anonymousId=${'x'.repeat(200)}`, 400, 'anonymousId'],
  ])('%s → %i', async (query, status, path) => {
    const res = await get(query);
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error: { path } });
  });

  it('401 for an unknown write key, 403 for an origin the site does not allow', async () => {
    const unknown = await exports.default.fetch('http://attune.test/v1/decide?writeKey=nope&slots=hero');
    expect(unknown.status).toBe(401);
    const foreign = await get('slots=hero&anonymousId=a', { origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers a CORS preflight for allowed origins only', async () => {
    const ok = await exports.default.fetch(decideUrl('slots=hero'), {
      method: 'OPTIONS',
      headers: { origin: SITE_ORIGIN },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(SITE_ORIGIN);
    const no = await exports.default.fetch(decideUrl('slots=hero'), {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example' },
    });
    expect(no.status).toBe(403);
  });

  it('refuses a CORS preflight for an unknown write key, whatever the origin', async () => {
    for (const origin of [SITE_ORIGIN, 'https://evil.example']) {
      const res = await exports.default.fetch('http://attune.test/v1/decide?writeKey=nope&slots=hero', {
        method: 'OPTIONS',
        headers: { origin },
      });
      expect(res.status).toBe(403);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    }
  });
});
