/**
 * The edge proxy's page decisions under decide's limits: a page decision costs a token of
 * the address's per-IP bucket (over it, the origin's page is served undecided), and a page
 * viewed again logs its exposures once.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { EventMessage } from '@attune/shared-schema';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from '../catalog/index.ts';
import { holdBuiltInConsentConfig } from '../config/test-support.ts';
import { anonymousIdInGroup, seedPerson, viewed } from '../decide/fixtures/people.ts';
import { envWithSites, recordQueue } from '../ingest/test-support.ts';

/** The shop's own origin as the browser sees it (an allowed origin of site `demo`). */
const SHOP = 'http://127.0.0.1:8787';

/** The trail jacket's page for the person with id cookie `aid`, read to its end, its background work done. */
async function jacketPage(
  aid: string,
  ip: string,
  target: Env = env,
): Promise<{ status: number; html: string }> {
  const ctx = createExecutionContext();
  const res = await createApp().fetch(
    new Request(`${SHOP}/products/trail-jacket`, {
      headers: { accept: 'text/html', cookie: `attune_aid=${aid}`, 'cf-connecting-ip': ip },
    }),
    target,
    ctx,
  );
  const html = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, html };
}

const queue = recordQueue();
const servedTo = (anonymousId: string): EventMessage[] =>
  queue.messages.filter(
    (m): m is EventMessage =>
      m.kind === 'event' && m.event.name === 'decision.served' && m.personId === `anon:${anonymousId}`,
  );

let fan: string;
let returning: string;

beforeAll(async () => {
  await putCatalogSnapshot(env, FIXTURE_CATALOG);
  await holdBuiltInConsentConfig(env);
  fan = anonymousIdInGroup('proxy-limits-fan', false);
  await seedPerson(env, `anon:${fan}`, { analytics: true, personalization: true }, [
    viewed('hiking-boots', 'outdoor', ['boots', 'waterproof']),
  ]);
  returning = anonymousIdInGroup('proxy-limits-returning', false);
  await seedPerson(env, `anon:${returning}`, { analytics: true, personalization: true }, [
    viewed('rain-shell', 'outdoor', ['jacket', 'waterproof']),
  ]);
});

describe('edge proxy page decisions', () => {
  it('serve the origin’s page undecided once the address is over its per-IP limit', async () => {
    const tight = envWithSites([
      {
        id: 'demo',
        writeKey: 'pk_demo_attune',
        allowedOrigins: [SHOP],
        settings: { rateLimit: { ipPerSecond: 0.01, ipBurst: 2 } },
      },
    ]);
    const pages = [];
    for (let i = 0; i < 3; i++) pages.push(await jacketPage(fan, '198.51.100.41', tight));
    expect(pages.map((p) => p.status)).toEqual([200, 200, 200]);
    expect(pages.map((p) => p.html.includes('data-attune-variant'))).toEqual([true, true, false]);
    expect(pages[2]?.html).toContain('Origin hero');
  });

  it('log each slot’s exposure once when the same person views the page again', async () => {
    const first = await jacketPage(returning, '198.51.100.42');
    expect(first.html).toContain('data-attune-variant');
    const slots = servedTo(returning).map((m) => m.event.properties?.slot);
    // Every slot the page filled (the unknown one is not a slot), once each.
    expect([...slots].sort()).toEqual(['hero', 'promo', 'recommendations']);
    await jacketPage(returning, '198.51.100.42');
    await jacketPage(returning, '198.51.100.42');
    expect(servedTo(returning)).toHaveLength(slots.length);
  });
});
