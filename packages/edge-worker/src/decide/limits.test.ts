/**
 * What one caller can make a decide cost: a per-IP limit (429 with Retry-After, on
 * `/v1/decide` and `/attune/decide`), one `decision.served` per person, slot and variant in
 * a window, none for a slot that does not exist, and no co-visit shard read for a product
 * that is not in the catalog — while a real page view is still logged and measured.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { DecideResponse, EventMessage } from '@attune/shared-schema';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { buildCatalogIndex } from '../catalog/catalog-index.ts';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from '../catalog/index.ts';
import { envWithSites, recordQueue } from '../ingest/test-support.ts';
import { clearCovisitCache } from './covisitation.ts';
import { decideSlots, type SlotContext } from './decide.ts';
import { anonymousIdInGroup, consentState, seedPerson, viewed } from './fixtures/people.ts';
import { DEFAULT_EXPERIMENT } from './holdout.ts';
import { measureLift } from './lift.ts';

const SITE_ORIGIN = 'http://localhost:3000';
const decideUrl = (query: string) => `http://attune.test/v1/decide?writeKey=pk_demo_attune&${query}`;

/** Sends a request through the app and waits for its background work (the queued events). */
async function send(url: string, headers: Record<string, string>, target: Env = env): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await createApp().fetch(new Request(url, { headers }), target, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}
const decide = (query: string, headers: Record<string, string> = {}, target: Env = env) =>
  send(decideUrl(query), { origin: SITE_ORIGIN, ...headers }, target);

/** Site `demo` allowing two requests per IP, then one every 100 s. */
const tight = envWithSites([
  {
    id: 'demo',
    writeKey: 'pk_demo_attune',
    allowedOrigins: [SITE_ORIGIN],
    settings: { rateLimit: { ipPerSecond: 0.01, ipBurst: 2 } },
  },
]);

const queue = recordQueue();
const servedTo = (anonymousId: string): EventMessage[] =>
  queue.messages.filter(
    (m): m is EventMessage =>
      m.kind === 'event' && m.event.name === 'decision.served' && m.personId === `anon:${anonymousId}`,
  );

beforeAll(async () => {
  await putCatalogSnapshot(env, FIXTURE_CATALOG);
});

describe('GET /v1/decide per-IP rate limit', () => {
  it('answers 429 with Retry-After, CORS for the site and a readable error once an address is over its limit', async () => {
    const ip = { 'cf-connecting-ip': '198.51.100.31' };
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await decide('slots=hero&anonymousId=limited-visitor', ip, tight);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(last?.headers.get('access-control-allow-origin')).toBe(SITE_ORIGIN);
    expect(last?.headers.get('access-control-expose-headers')).toContain('Retry-After');
    expect(last?.headers.get('cache-control')).toBe('no-store');
    expect(await last?.json()).toMatchObject({
      error: { code: 'rate_limited', message: expect.stringMatching(/retry after \d+ s/) },
    });
    // Another address has a bucket of its own.
    expect((await decide('slots=hero', { 'cf-connecting-ip': '198.51.100.32' }, tight)).status).toBe(200);
  });

  it('decides and logs nothing for a request over the limit', async () => {
    const ip = { 'cf-connecting-ip': '198.51.100.33' };
    const person = anonymousIdInGroup('over-the-limit', false);
    await seedPerson(env, `anon:${person}`, { analytics: true, personalization: true });
    expect((await decide('slots=hero&anonymousId=someone-else', ip, tight)).status).toBe(200);
    expect((await decide('slots=promo&anonymousId=someone-else', ip, tight)).status).toBe(200);
    const refused = await decide(`slots=hero&anonymousId=${person}`, ip, tight);
    expect(refused.status).toBe(429);
    expect(servedTo(person)).toEqual([]);
  });

  it('asks the limiter object rarely: once per leased block, and not again while a refusal stands', async () => {
    /** `target` with the limiter objects it asks for recorded. */
    const counting = (target: Env) => {
      const asked: string[] = [];
      const binding = {
        idFromName: (name: string) => {
          asked.push(name);
          return env.RATE_LIMITER.idFromName(name);
        },
        get: (id: DurableObjectId) => env.RATE_LIMITER.get(id),
      };
      return { asked, env: { ...target, RATE_LIMITER: binding } as unknown as Env };
    };
    // The default limits (50/s, burst 200) lease 20 tokens at a time: a page's decides in
    // the same second are answered from the isolate's lease.
    const generous = counting(env);
    for (let i = 0; i < 20; i++)
      expect((await decide('slots=hero', { 'cf-connecting-ip': '198.51.100.35' }, generous.env)).status).toBe(
        200,
      );
    expect(generous.asked).toHaveLength(1);
    // Over the limit, one refusal from the object holds until the time it names.
    const limited = counting(tight);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++)
      statuses.push(
        (await decide('slots=hero', { 'cf-connecting-ip': '198.51.100.36' }, limited.env)).status,
      );
    expect(statuses).toEqual([200, 200, 429, 429, 429, 429, 429, 429]);
    expect(limited.asked).toHaveLength(3);
  });

  it('limits the first-party /attune/decide the same way', async () => {
    const ip = { 'cf-connecting-ip': '198.51.100.34' };
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 3; i++) {
      last = await send('http://attune.test/attune/decide?writeKey=pk_demo_attune&slots=hero', ip, tight);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await last?.json()).toMatchObject({ error: { code: 'rate_limited' } });
  });
});

describe('decision.served: each exposure once', () => {
  it('logs a person’s slot and variant once however often the same decide is asked, and lift still counts them', async () => {
    const person = anonymousIdInGroup('asks-again', false);
    await seedPerson(env, `anon:${person}`, { analytics: true, personalization: true }, [
      viewed('trail-jacket', 'outdoor', ['jacket', 'waterproof']),
    ]);
    const answers: DecideResponse[] = [];
    for (let i = 0; i < 5; i++)
      answers.push(await (await decide(`slots=hero,recommendations&anonymousId=${person}`)).json());
    const served = servedTo(person);
    expect(served.map((m) => m.event.properties?.slot).sort()).toEqual(['hero', 'recommendations']);
    // The first answer's decisions are the ones logged.
    expect(served.map((m) => m.event.properties?.decisionId).sort()).toEqual(
      [answers[0]?.decisions.hero?.decisionId, answers[0]?.decisions.recommendations?.decisionId].sort(),
    );
    // A conversion carrying a later answer's decision id is still the person's, in their group.
    const logged = served.map((m) => ({
      personId: m.personId,
      name: m.event.name,
      timestamp: m.event.timestamp,
      properties: m.event.properties ?? {},
    }));
    const conversion = {
      personId: `anon:${person}`,
      name: 'order.completed',
      timestamp: new Date(Date.now() + 1000).toISOString(),
      properties: { decisionId: answers[4]?.decisions.hero?.decisionId ?? '' },
    };
    const lift = measureLift([...logged, conversion], DEFAULT_EXPERIMENT);
    expect(lift.treatment).toMatchObject({ people: 1, converters: 1 });
  });

  it('logs nothing for a made-up slot whose name starts with "recommendations"', async () => {
    const person = anonymousIdInGroup('made-up-slots', false);
    await seedPerson(env, `anon:${person}`, { analytics: true, personalization: true });
    const slots = Array.from({ length: 10 }, (_, i) => `recommendations-${i}`).join(',');
    const res = await decide(`slots=${slots}&anonymousId=${person}`);
    expect(res.status).toBe(200);
    expect((await res.json<DecideResponse>()).decisions).toEqual({});
    expect(servedTo(person)).toEqual([]);
  });

  it('decides the built-in recommendations slot without content, and only it', () => {
    const withoutContent = buildCatalogIndex({
      ...FIXTURE_CATALOG,
      slotContent: FIXTURE_CATALOG.slotContent.filter((v) => v.slot !== 'recommendations'),
    });
    const ctx: SlotContext = {
      siteId: 'demo',
      personKey: 'anon:built-in',
      anonymousId: 'built-in',
      slots: ['recommendations', 'recommendations-extra', 'recommendationsx'],
      budgetMs: 50,
      profile: null,
      consent: consentState({ analytics: true }),
      personalization: false,
      holdout: false,
      covisits: new Map(),
      analytics: true,
    };
    const { response, served } = decideSlots(withoutContent, ctx);
    expect(Object.keys(response.decisions)).toEqual(['recommendations']);
    expect(response.decisions.recommendations?.items).toHaveLength(4);
    expect(served.map((m) => m.event.properties?.slot)).toEqual(['recommendations']);
  });
});

describe('co-visits are read for catalog products only', () => {
  /** The app's env with the co-visit shards it asks for recorded. */
  function countingShards() {
    const shards: string[] = [];
    const binding = {
      idFromName: (name: string) => {
        shards.push(name);
        return env.COVISITATION.idFromName(name);
      },
      get: (id: DurableObjectId) => env.COVISITATION.get(id),
    };
    return { shards, env: { ...env, COVISITATION: binding } as unknown as Env };
  }

  afterEach(() => clearCovisitCache());

  it('reads no shard for a productId the catalog does not have (and one for a product it has)', async () => {
    clearCovisitCache();
    const made = countingShards();
    for (let i = 0; i < 3; i++)
      expect(
        (await decide(`slots=recommendations&productId=no-such-product-${i}`, {}, made.env)).status,
      ).toBe(200);
    expect(made.shards).toEqual([]);
    const real = countingShards();
    await decide('slots=recommendations&productId=trail-jacket', {}, real.env);
    expect(real.shards).toHaveLength(1);
  });

  it('reads no shard for recent views of products the catalog does not have', async () => {
    clearCovisitCache();
    const person = anonymousIdInGroup('views-made-up', false);
    await seedPerson(env, `anon:${person}`, { analytics: true, personalization: true }, [
      viewed('no-such-product-a', 'outdoor'),
      viewed('no-such-product-b', 'outdoor'),
    ]);
    const counting = countingShards();
    await decide(`slots=recommendations&anonymousId=${person}`, {}, counting.env);
    expect(counting.shards).toEqual([]);
  });
});
