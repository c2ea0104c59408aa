/**
 * Directus → edge: signed hooks invalidate the edge caches; a real Directus Flow reaches
 * the Worker (under wrangler dev) when a marketer edits a consent category, and
 * /v1/config serves the new categories with a new policy version, whose wording is kept in
 * Directus `policy_versions`; the orders Flow sends
 * order.completed to the Worker's server-side ingest, which lands in the event log, without
 * leaving the server key or the buyer in Directus's revisions, and without a made-up browser
 * for a signed-in buyer's order.
 */

import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { type ConsentConfig, DEFAULT_CONSENT_CONFIG } from '@attune/shared-schema';
import { beforeAll, describe, expect, it } from 'vitest';
import { CATALOG_VERSION_KEY } from '../../src/catalog/index.ts';
import {
  CONSENT_CONFIG_VERSION_KEY,
  getConsentConfig,
  invalidateConsentConfig,
} from '../../src/config/consent-config.ts';
import { signHookBody } from '../../src/hooks/signature.ts';
import worker from '../../src/index.ts';
import { DIRECTUS_TEST } from './constants.mjs';
import { admin, env, eventually, recordConsent, rows, uniqueId } from './support.ts';

async function call(path: string, init: RequestInit = {}, target: Env = env()): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://attune.test${path}`, init), target, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

function hookBody(collection: string, at = new Date().toISOString()): string {
  return JSON.stringify({ source: 'directus', collection, event: 'items.update', keys: ['x'], at });
}

async function postHook(body: string, signature?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (signature !== undefined) headers['x-attune-signature'] = signature;
  return call('/v1/hooks/directus', { method: 'POST', headers, body });
}

const CATEGORIES = DEFAULT_CONSENT_CONFIG.categories.map((c, i) => ({ ...c, sort: i + 1 }));

beforeAll(async () => {
  const existing = await admin<{ key: string }[]>('GET', '/items/consent_categories?fields=key&limit=-1');
  if (existing.length > 0)
    await admin(
      'DELETE',
      '/items/consent_categories',
      existing.map((c) => c.key),
    );
  await admin('POST', '/items/consent_categories', CATEGORIES);
});

describe('POST /v1/hooks/directus', () => {
  it('refuses a hook without a valid signature and changes nothing', async () => {
    await env().EDGE_CACHE.put(CATALOG_VERSION_KEY, 'v-before');
    const body = hookBody('products');
    expect((await postHook(body)).status).toBe(401);
    expect((await postHook(body, await signHookBody('wrong-secret', body))).status).toBe(401);
    expect((await postHook(body, 'sha256=zz')).status).toBe(401);
    // A valid signature over a different body.
    expect(
      (await postHook(body, await signHookBody(DIRECTUS_TEST.hookSecret, hookBody('slot_content')))).status,
    ).toBe(401);
    expect(await env().EDGE_CACHE.get(CATALOG_VERSION_KEY)).toBe('v-before');
  });

  it('refuses a signed hook replayed long after it was made', async () => {
    const body = hookBody('products', new Date(Date.now() - 60 * 60 * 1000).toISOString());
    expect((await postHook(body, await signHookBody(DIRECTUS_TEST.hookSecret, body))).status).toBe(400);
  });

  it('answers 400, not 5xx, to a signed body that is not a hook', async () => {
    const body = '{"hello":1}';
    expect((await postHook(body, await signHookBody(DIRECTUS_TEST.hookSecret, body))).status).toBe(400);
  });

  it('a signed catalog change bumps the catalog version; a consent change drops the consent config cache', async () => {
    await env().EDGE_CACHE.put(CATALOG_VERSION_KEY, 'v-before');
    const body = hookBody('products');
    const res = await postHook(body, await signHookBody(DIRECTUS_TEST.hookSecret, body));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, invalidated: ['catalog'] });
    expect(await env().EDGE_CACHE.get(CATALOG_VERSION_KEY)).not.toBe('v-before');

    const generation = await env().EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY);
    const consentBody = hookBody('consent_categories');
    const res2 = await postHook(consentBody, await signHookBody(DIRECTUS_TEST.hookSecret, consentBody));
    expect(await res2.json()).toMatchObject({ invalidated: ['consent-config'] });
    expect(await env().EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY)).not.toBe(generation);
  });
});

describe('GET /v1/config', () => {
  it('serves the categories from Directus, and a 503 when Directus cannot be reached after a change', async () => {
    await invalidateConsentConfig(env());
    const res = await call('/v1/config?writeKey=pk_demo_attune');
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual(DEFAULT_CONSENT_CONFIG);

    // A marketer disables marketing in Directus: once the cache is invalidated the edge offers it no more.
    // Ticking `required` on analytics does not make it granted to everyone: a purpose needs a choice.
    await admin('PATCH', '/items/consent_categories/marketing', { enabled: false });
    await admin('PATCH', '/items/consent_categories/analytics', { required: true });
    try {
      await invalidateConsentConfig(env());
      const changed = (await (await call('/v1/config?writeKey=pk_demo_attune')).json()) as ConsentConfig;
      expect(changed.categories.find((c) => c.key === 'marketing')?.enabled).toBe(false);
      expect(changed.categories.find((c) => c.key === 'analytics')?.required).toBe(false);
      expect(changed.categories.map((c) => c.key)).toEqual([
        'necessary',
        'analytics',
        'personalization',
        'marketing',
      ]);
      expect(changed.policyVersion).not.toBe(DEFAULT_CONSENT_CONFIG.policyVersion);
    } finally {
      await admin('PATCH', '/items/consent_categories/marketing', { enabled: true });
      await admin('PATCH', '/items/consent_categories/analytics', { required: false });
    }

    await invalidateConsentConfig(env());
    const down = { ...env(), DIRECTUS_URL: 'http://127.0.0.1:9' } as unknown as Env;
    const fallback = await call('/v1/config?writeKey=pk_demo_attune', {}, down);
    // Not the built-ins (their policy version would set every visitor's choice aside), nor the
    // copy from before the change (marketing disabled): the tag keeps its stored choice.
    expect(fallback.status).toBe(503);
    expect(((await fallback.json()) as { error: { code: string } }).error.code).toBe('config_unavailable');
    await invalidateConsentConfig(env());
  });

  it('answers 400 without a write key and 401 for an unknown one', async () => {
    expect((await call('/v1/config')).status).toBe(400);
    expect((await call('/v1/config?writeKey=pk_nope')).status).toBe(401);
  });
});

describe('Directus Flows → the Worker (wrangler dev)', () => {
  const configAtWorker = async (): Promise<ConsentConfig> => {
    const res = await fetch(`${DIRECTUS_TEST.workerUrl}/v1/config?writeKey=pk_demo_attune`);
    return (await res.json()) as ConsentConfig;
  };

  it('a marketer renaming a consent category reaches the edge at once, with a new policy version', async () => {
    const before = await configAtWorker();
    expect(before.policyVersion).toBe(DEFAULT_CONSENT_CONFIG.policyVersion);
    expect(before.categories.find((c) => c.key === 'marketing')?.label).toBe('Marketing');
    // Cached at the edge now: only the Flow's hook can make the change visible within the test.
    await admin('PATCH', '/items/consent_categories/marketing', { label: 'Offers and promotions' });

    const after = await eventually(async () => {
      const config = await configAtWorker();
      return config.categories.find((c) => c.key === 'marketing')?.label === 'Offers and promotions'
        ? config
        : undefined;
    });
    expect(after.policyVersion).not.toBe(before.policyVersion);
    // What the new version says is kept in Directus, for whoever must prove a choice made under it.
    const [wording] = await eventually(async () => {
      const found = await rows<{ policy_version: string; categories: { key: string; label: string }[] }>(
        'policy_versions',
        { id: { _eq: `demo:${after.policyVersion}` } },
      );
      return found.length > 0 ? found : undefined;
    });
    expect(wording?.policy_version).toBe(after.policyVersion);
    expect(wording?.categories.find((c) => c.key === 'marketing')?.label).toBe('Offers and promotions');

    // Changing it back restores the original policy (same categories, same version).
    await admin('PATCH', '/items/consent_categories/marketing', { label: 'Marketing' });
    const restored = await eventually(async () => {
      const config = await configAtWorker();
      return config.categories.find((c) => c.key === 'marketing')?.label === 'Marketing' ? config : undefined;
    });
    expect(restored.policyVersion).toBe(before.policyVersion);
  });

  it('keeps the wording of a policy version read from the edge cache, when its first read could not record it', async () => {
    // As if the isolate that read it from Directus failed to write its wording: the version
    // lives only in KV, where every later read finds it.
    const site = uniqueId('wording-site');
    const policyVersion = `1.${uniqueId('v').slice(-12)}`;
    const config = {
      policyVersion,
      categories: CATEGORIES.map(({ sort: _sort, ...c }) =>
        c.key === 'marketing' ? { ...c, label: 'Deals' } : c,
      ),
    };
    const generation = await invalidateConsentConfig(env());
    await env().EDGE_CACHE.put(`consent-config:${generation}:${site}`, JSON.stringify(config));
    const ctx = createExecutionContext();
    const served = await getConsentConfig(env(), site, (p) => ctx.waitUntil(p));
    expect(served.policyVersion).toBe(policyVersion);
    await waitOnExecutionContext(ctx);
    const [wording] = await eventually(async () => {
      const found = await rows<{ policy_version: string; categories: { key: string; label: string }[] }>(
        'policy_versions',
        { id: { _eq: `${site}:${policyVersion}` } },
      );
      return found.length > 0 ? found : undefined;
    });
    expect(wording?.categories.find((c) => c.key === 'marketing')?.label).toBe('Deals');
  });

  it('an order created in Directus arrives in the event log as order.completed', async () => {
    const anonymousId = uniqueId('buyer');
    // The buyer consented in the browser earlier (the order's server event defers to that record).
    expect((await recordConsent({ anonymousId }, { origin: 'http://localhost:3000' })).status).toBeLessThan(
      300,
    );

    const orderId = uniqueId('order');
    await admin('POST', '/items/orders', {
      id: orderId,
      site_id: 'demo',
      anonymous_id: anonymousId,
      total: 129.9,
      currency: 'EUR',
      items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
      status: 'paid',
      created_at: new Date().toISOString(),
    });
    // Flow → /v1/collect (server key) → ProfileDO → EVENTS queue → consumer → Directus.
    const [event] = await eventually(async () => {
      const found = await rows<{ name: string; properties: { orderId: string; total: number } }>('events', {
        _and: [{ anonymous_id: { _eq: anonymousId } }, { name: { _eq: 'order.completed' } }],
      });
      return found.length > 0 ? found : undefined;
    }, 30_000);
    expect(event?.properties).toMatchObject({ orderId, total: 129.9 });
  });

  it("sends only its own site's paid orders: another site's order, or a pending one, is not a purchase here", async () => {
    const anonymousId = uniqueId('buyer');
    expect((await recordConsent({ anonymousId }, { origin: 'http://localhost:3000' })).status).toBeLessThan(
      300,
    );
    const order = (id: string, fields: Record<string, unknown>) =>
      admin('POST', '/items/orders', {
        id,
        site_id: 'demo',
        anonymous_id: anonymousId,
        total: 10,
        currency: 'EUR',
        items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
        status: 'paid',
        created_at: new Date().toISOString(),
        ...fields,
      });
    const otherSite = uniqueId('order');
    const pending = uniqueId('order');
    const paid = uniqueId('order');
    await order(otherSite, { site_id: 'another-shop' });
    await order(pending, { status: 'pending' });
    await order(paid, {});
    const arrived = async () =>
      (
        await rows<{ properties: { orderId: string } }>('events', {
          _and: [{ anonymous_id: { _eq: anonymousId } }, { name: { _eq: 'order.completed' } }],
        })
      ).map((e) => e.properties.orderId);
    await eventually(async () => ((await arrived()).includes(paid) ? true : undefined), 30_000);
    // The Flows run side by side: give the two others as long again as the paid one took.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    // Before, both arrived under demo as purchases (another site's buyer merged into demo's person).
    expect(await arrived()).toEqual([paid]);
  });

  const serverAuthorization = `Basic ${btoa(`${DIRECTUS_TEST.serverKey}:`)}`;

  /** The shop's backend signs a shopper in on a browser (server key), with consent given there. */
  async function signIn(userId: string, anonymousId: string): Promise<void> {
    const res = await recordConsent({ anonymousId, userId }, { authorization: serverAuthorization });
    expect(res.status).toBe(200);
  }

  /** Creates an order in Directus and waits until the Flow's order.completed is in the event log. */
  async function placeOrder(order: { user_id?: string; anonymous_id?: string }): Promise<string> {
    const orderId = uniqueId('order');
    await admin('POST', '/items/orders', {
      id: orderId,
      site_id: 'demo',
      ...order,
      total: 42,
      currency: 'EUR',
      items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
      status: 'paid',
      created_at: new Date().toISOString(),
    });
    await eventually(async () => {
      const found = await rows<{ properties: { orderId: string } }>('events', {
        name: { _eq: 'order.completed' },
      });
      return found.some((e) => e.properties.orderId === orderId) ? true : undefined;
    }, 30_000);
    return orderId;
  }

  /** What the edge holds about a person (the Worker's access answer, edge part). */
  async function atEdge(personId: string): Promise<Response> {
    return fetch(
      `${DIRECTUS_TEST.workerUrl}/v1/people/${encodeURIComponent(personId)}?scope=edge&site=demo`,
      {
        headers: { authorization: `Bearer ${DIRECTUS_TEST.adminToken}` },
      },
    );
  }

  it("an order leaves neither the server key nor the buyer's ids in Directus's revisions or activity", async () => {
    const userId = uniqueId('shopper');
    const anonymousId = uniqueId('browser');
    await signIn(userId, anonymousId);
    await placeOrder({ user_id: userId, anonymous_id: anonymousId });

    // Read as an admin would in the Flow's logs (and anyone granted revisions or activity).
    type Row = { id: number; collection: string };
    const stored = [
      ...(await admin<Row[]>('GET', '/revisions?limit=-1')).map((r) => ({ ...r, kind: 'revision' })),
      ...(await admin<Row[]>('GET', '/activity?limit=-1')).map((a) => ({ ...a, kind: 'activity' })),
    ];
    const holding = (needle: string, among: typeof stored = stored): string[] =>
      among
        .filter((r) => JSON.stringify(r).includes(needle))
        .map((r) => `${r.kind} ${r.id} (${r.collection})`);
    expect(holding(DIRECTUS_TEST.serverKey)).toEqual([]);
    expect(holding(btoa(`${DIRECTUS_TEST.serverKey}:`))).toEqual([]);
    // Neither the Flow's runs nor the order's own history copy the buyer: once the shop deletes
    // the order (an erasure request), nothing of it is left in Directus.
    expect(holding(userId)).toEqual([]);
    expect(holding(anonymousId)).toEqual([]);
  });

  it("a signed-in shopper's order without a browser id adds no made-up browser to the person", async () => {
    const userId = uniqueId('shopper');
    const browser = uniqueId('browser');
    await signIn(userId, browser);
    const orderId = await placeOrder({ user_id: userId });

    const person = (await (await atEdge(`user:${userId}`)).json()) as {
      profile?: { anonymousIds: string[]; counters: Record<string, number> };
    };
    expect(person.profile?.counters.orders).toBe(1);
    expect(person.profile?.anonymousIds).toEqual([browser]);
    expect((await atEdge(`anon:order-${orderId}`)).status).toBe(404);
  });
});
