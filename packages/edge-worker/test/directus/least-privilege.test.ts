/**
 * Least privilege in Directus. The Worker's token (role attune-sync) can do what the sync
 * needs and nothing else: no system collections, no catalog writes, no order created or
 * deleted (it reads them and clears whose they were), no admin. The roles for people: a marketer edits what the edge
 * serves and sees no person's data; a privacy officer reads the proof of consent and
 * erasure, and orders, and can change none of it.
 */
import { BUILT_IN_SEGMENTS } from '@attune/shared-schema';
import { beforeAll, describe, expect, it } from 'vitest';
import { DIRECTUS_TEST } from './constants.mjs';
import { admin, eventMessage, eventually, rows, uniqueId } from './support.ts';

/** A request with this static token; answers its status. */
async function as(token: string, method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${DIRECTUS_TEST.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await res.body?.cancel();
  return res.status;
}

/** A request with this static token; answers its status and the first error's message and code. */
async function answer(
  token: string,
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number; message: string; code: string }> {
  const res = await fetch(`${DIRECTUS_TEST.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json().catch(() => ({}))) as {
    errors?: { message?: string; extensions?: { code?: string } }[];
  };
  const [error] = json.errors ?? [];
  return { status: res.status, message: error?.message ?? '', code: error?.extensions?.code ?? '' };
}

/** A consent category key of its own for a test (lower case, letters, digits and _). */
const categoryKey = (prefix: string) =>
  uniqueId(prefix)
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 60);

const asSync = (method: string, path: string, body?: unknown) =>
  as(DIRECTUS_TEST.syncToken, method, path, body);

describe('the attune-sync token', () => {
  it('may write the event log, profiles and consent proof, and read the catalog', async () => {
    const e = eventMessage(`anon:${uniqueId('lp')}`);
    expect(
      await asSync('POST', '/items/events', { id: e.event.id, site_id: 'demo', person_key: 'anon:lp' }),
    ).toBe(200);
    expect(await asSync('GET', `/items/events/${e.event.id}`)).toBe(200);
    expect(await asSync('DELETE', `/items/events/${e.event.id}`)).toBe(204);
    expect(
      await asSync('POST', '/items/people', { id: `demo:anon:${uniqueId('lp')}`, site_id: 'demo' }),
    ).toBe(200);
    for (const c of ['products', 'slot_content', 'trigger_rules', 'consent_categories', 'sites'])
      expect(await asSync('GET', `/items/${c}?limit=1`)).toBe(200);
  });

  it('alone may use the bulk event endpoint', async () => {
    const row = { id: eventMessage('anon:x').event.id, site_id: 'demo', person_key: 'anon:x' };
    const anonymous = await fetch(`${DIRECTUS_TEST.url}/attune-sync/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([row]),
    });
    await anonymous.body?.cancel();
    expect(anonymous.status).toBe(403);
    expect(await asSync('POST', '/attune-sync/events', [row])).toBe(200);
    expect(await asSync('POST', '/attune-sync/events', [{ ...row, received_at: 'never' }])).toBe(400);
  });

  it('may not change the catalog, consent categories or sites', async () => {
    // A product the edge could read: the write check Flow (a filter) judges a write before
    // Directus's permissions, and would answer 400 for one it could not.
    const forged = { id: 'p-forged', slug: 'forged', title: 'forged', category: 'outdoor' };
    expect(await asSync('POST', '/items/products', forged)).toBe(403);
    expect(await asSync('PATCH', '/items/consent_categories/marketing', { default: true })).toBe(403);
    expect(await asSync('DELETE', '/items/consent_categories/analytics')).toBe(403);
    expect(await asSync('POST', '/items/sites', { id: 'evil', write_key: 'pk_evil' })).toBe(403);
  });

  it('may not rewrite or delete erasure proofs, or what a policy version said', async () => {
    const proof = {
      id: uniqueId('proof-lp'),
      site_id: 'demo',
      reason: 'request',
      requested_at: new Date().toISOString(),
    };
    // Counted into while open, through the extension alone: the items API refuses any update.
    expect(await asSync('POST', '/attune-sync/erasure-proofs', { proof, add: { events_deleted: 2 } })).toBe(
      200,
    );
    expect(await asSync('PATCH', `/items/erasure_proofs/${proof.id}`, { events_deleted: 0 })).toBe(403);
    expect(await asSync('POST', '/attune-sync/erasure-proofs', { proof, add: { site_id: 1 } })).toBe(400);
    expect(await asSync('POST', '/attune-sync/erasure-proofs', { proof, add: { events_deleted: -2 } })).toBe(
      400,
    );
    const anonymous = await fetch(`${DIRECTUS_TEST.url}/attune-sync/erasure-proofs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ proof, erasedAt: proof.requested_at }),
    });
    await anonymous.body?.cancel();
    expect(anonymous.status).toBe(403);
    expect(await rows('erasure_proofs', { id: { _eq: proof.id } })).toEqual([
      expect.objectContaining({ events_deleted: 2, erased_at: null }),
    ]);
    expect(await asSync('PATCH', '/items/erasure_proofs/any', { site_id: 'x' })).toBe(403);
    expect(await asSync('DELETE', '/items/erasure_proofs/any')).toBe(403);
    expect(await asSync('PATCH', '/items/policy_versions/any', { categories: [] })).toBe(403);
    expect(await asSync('DELETE', '/items/policy_versions/any')).toBe(403);
  });

  it('may read orders and clear whose they were (an erasure), and neither create nor delete one', async () => {
    const order = uniqueId('order-lp');
    await admin('POST', '/items/orders', {
      id: order,
      site_id: 'demo',
      user_id: uniqueId('buyer'),
      total: 10,
      status: 'pending',
    });
    expect(await asSync('GET', `/items/orders/${order}`)).toBe(200);
    expect(await asSync('PATCH', `/items/orders/${order}`, { user_id: null, anonymous_id: null })).toBe(200);
    expect(await asSync('POST', '/items/orders', { id: uniqueId('forged'), site_id: 'demo' })).toBe(403);
    expect(await asSync('DELETE', `/items/orders/${order}`)).toBe(403);
  });

  it('may not touch users, roles, policies, permissions, flows, settings or the schema', async () => {
    expect(await asSync('GET', '/users')).toBe(403);
    expect(await asSync('POST', '/users', { email: 'x@example.com', password: 'x' })).toBe(403);
    expect(await asSync('GET', '/roles')).toBe(403);
    expect(await asSync('GET', '/policies')).toBe(403);
    expect(await asSync('POST', '/permissions', { collection: 'products', action: 'update' })).toBe(403);
    expect(await asSync('GET', '/flows')).toBe(403);
    expect(await asSync('PATCH', '/settings', { project_name: 'owned' })).toBe(403);
    expect(await asSync('POST', '/collections', { collection: 'evil' })).toBe(403);
    expect(await asSync('DELETE', '/collections/events')).toBe(403);
  });
});

/** A person invited with the role bootstrap made under this name; answers their static token. */
async function invited(roleName: string): Promise<string> {
  const [role] = await admin<{ id: string }[]>(
    'GET',
    `/roles?filter[name][_eq]=${encodeURIComponent(roleName)}&fields=id`,
  );
  if (role === undefined) throw new Error(`bootstrap made no role ${roleName}`);
  const token = `${uniqueId('person-token')}-0123456789abcdef`;
  await admin('POST', '/users', {
    email: `${uniqueId('person')}@example.com`.toLowerCase(),
    role: role.id,
    token,
    status: 'active',
  });
  return token;
}

describe('the roles bootstrap makes for people', () => {
  let marketer = '';
  let officer = '';
  const consentRecord = uniqueId('consent-record');
  const order = uniqueId('order-officer');
  beforeAll(async () => {
    marketer = await invited('Attune marketer');
    officer = await invited('Attune privacy officer');
    await admin('POST', '/items/consent_records', {
      id: consentRecord,
      site_id: 'demo',
      person_key: 'anon:x',
    });
    await admin('POST', '/items/orders', { id: order, site_id: 'demo', user_id: 'u-x', status: 'pending' });
  });

  it('a marketer edits products, slots, trigger rules and consent categories', async () => {
    const product = uniqueId('p-marketer');
    const boots = { id: product, slug: product, title: 'New boots', category: 'outdoor', price: 1 };
    expect(await as(marketer, 'POST', '/items/products', boots)).toBe(200);
    expect(await as(marketer, 'PATCH', `/items/products/${product}`, { title: 'Better boots' })).toBe(200);
    expect(await as(marketer, 'DELETE', `/items/products/${product}`)).toBe(204);
    // A category of the marketer's own, on a site of its own (the others' policies stay as they are).
    const category = categoryKey('newsletter');
    const newsletter = { key: category, label: 'Newsletter', site_id: 'marketer-test-site' };
    expect(await as(marketer, 'POST', '/items/consent_categories', newsletter)).toBe(200);
    expect(await as(marketer, 'PATCH', `/items/consent_categories/${category}`, { enabled: false })).toBe(
      200,
    );
    expect(await as(marketer, 'DELETE', `/items/consent_categories/${category}`)).toBe(204);
    for (const c of ['slot_content', 'trigger_rules', 'sites'])
      expect(await as(marketer, 'GET', `/items/${c}`)).toBe(200);
  });

  it('a marketer targeting slot content picks segments from the built-in ones, as tags', async () => {
    const field = await admin<{ meta: { interface: string; options: { presets: string[] } } }>(
      'GET',
      '/fields/slot_content/targetSegments',
    );
    expect(field.meta.interface).toBe('tags');
    expect(field.meta.options.presets).toEqual(Object.values(BUILT_IN_SEGMENTS));
    const slot = uniqueId('slot-segments');
    const banner = {
      id: slot,
      slot: 'hero',
      kind: 'banner',
      title: 'Come back',
      targetSegments: ['cart_abandoner'],
    };
    expect(await as(marketer, 'POST', '/items/slot_content', banner)).toBe(200);
    expect(await as(marketer, 'DELETE', `/items/slot_content/${slot}`)).toBe(204);
  });

  it('a marketer cannot save a value the edge would skip: the row would vanish from the shop', async () => {
    const product = uniqueId('p-checked');
    const boots = { id: product, slug: product, title: 'Boots', category: 'outdoor', price: 1 };
    expect(await as(marketer, 'POST', '/items/products', boots)).toBe(200);
    expect(await as(marketer, 'PATCH', `/items/products/${product}`, { currency: 'eur' })).toBe(400);
    expect(await as(marketer, 'PATCH', `/items/products/${product}`, { popularity: 7 })).toBe(400);
    expect(
      await as(marketer, 'PATCH', `/items/products/${product}`, { currency: 'USD', popularity: 0.7 }),
    ).toBe(200);
    expect(
      await as(marketer, 'POST', '/items/slot_content', {
        id: uniqueId('slot'),
        slot: 'hero',
        kind: 'Banner',
      }),
    ).toBe(400);
    await as(marketer, 'DELETE', `/items/products/${product}`);
    // A slot name no page can ask for, a trigger on an event name the edge never sends:
    // accepted, they silently did nothing.
    for (const slot of ['Hero', 'hero ', 'my slot'])
      expect(
        await as(marketer, 'POST', '/items/slot_content', { id: uniqueId('slot'), slot, kind: 'banner' }),
      ).toBe(400);
    const rule = uniqueId('rule');
    expect(await as(marketer, 'POST', '/items/trigger_rules', { id: rule, on: 'Cart Item Added' })).toBe(400);
    expect(
      await as(marketer, 'POST', '/items/trigger_rules', { id: rule, on: 'cart.item.added', enabled: false }),
    ).toBe(200);
    await as(marketer, 'DELETE', `/items/trigger_rules/${rule}`);
    // A consent category: a key the edge reads, and a label the banner can show (a cleared
    // label left a purpose out, off for everyone).
    const category = { key: 'news_letter', label: 'Newsletter', site_id: 'marketer-test-site' };
    expect(await as(marketer, 'POST', '/items/consent_categories', { ...category, key: 'News Letter' })).toBe(
      400,
    );
    expect(await as(marketer, 'POST', '/items/consent_categories', { ...category, label: ' ' })).toBe(400);
    // Directus's app asks for the label (its API does not enforce `required` on a create that
    // leaves the field out: the write check Flow refuses that, see below).
    const label = await admin<{ meta: { required: boolean } }>('GET', '/fields/consent_categories/label');
    expect(label.meta.required).toBe(true);
    expect(await as(marketer, 'POST', '/items/consent_categories', category)).toBe(200);
    expect(await as(marketer, 'PATCH', '/items/consent_categories/news_letter', { label: '' })).toBe(400);
    expect(await as(marketer, 'PATCH', '/items/consent_categories/news_letter', { label: null })).toBe(400);
    await as(marketer, 'DELETE', '/items/consent_categories/news_letter');
  });

  it('a marketer cannot create a consent category the edge cannot read, and is told which field and what to do', async () => {
    const key = categoryKey('members');
    const site = 'marketer-test-site';
    const stored = () => rows('consent_categories', { key: { _eq: key } });
    // Directus's API took a create without the label its app asks for (`required` is checked
    // only on fields a create names); the edge then could not read the row.
    for (const [body, field] of [
      [{ key, site_id: site }, /\blabel\b/],
      [{ key, site_id: site, label: 'L'.repeat(129) }, /\blabel\b.*128/],
      [{ key, site_id: site, label: 'Members', description: 'D'.repeat(2001) }, /\bdescription\b.*2,?000/],
    ] as const) {
      const refused = await answer(marketer, 'POST', '/items/consent_categories', body);
      expect(refused, JSON.stringify(body).slice(0, 80)).toMatchObject({
        status: 400,
        code: 'INVALID_PAYLOAD',
      });
      expect(refused.message).toMatch(field);
    }
    expect(await stored()).toEqual([]);
    // What the edge reads is taken, and an update judges only the fields it changes.
    const category = { key, label: 'Members', description: 'Offers for members', site_id: site };
    expect(await as(marketer, 'POST', '/items/consent_categories', category)).toBe(200);
    expect(await as(marketer, 'PATCH', `/items/consent_categories/${key}`, { enabled: false })).toBe(200);
    expect(await as(marketer, 'PATCH', `/items/consent_categories/${key}`, { label: 'L'.repeat(128) })).toBe(
      200,
    );
    for (const label of [null, '']) {
      const cleared = await answer(marketer, 'PATCH', `/items/consent_categories/${key}`, { label });
      expect(cleared.status).toBe(400);
      expect(cleared.message).toMatch(/\blabel\b/);
    }
    expect(await stored()).toMatchObject([{ label: 'L'.repeat(128), enabled: false }]);
    expect(await as(marketer, 'DELETE', `/items/consent_categories/${key}`)).toBe(204);
  });

  it('a marketer cannot save a trigger rule the edge would skip, and is told which field and what to do', async () => {
    const id = uniqueId('rule-checked');
    // Disabled: the Worker under test reads this Directus, and must not offer it to anyone.
    const rule = { id, on: 'cart.item.added', enabled: false, when: { category: 'outdoor' } };
    const promo = { codePrefix: 'TRAIL10', discountPercent: 10, ttlHours: 48, capPerPerson: 1 };
    const stored = () => rows<{ promo: unknown }>('trigger_rules', { id: { _eq: id } });
    // Each was accepted, then skipped by the edge with a warning in the Worker's log alone.
    for (const [body, field] of [
      [{ ...rule, promo: { ...promo, codePrefix: 'trail' } }, /\bcodePrefix\b/],
      [{ ...rule, promo: 'ten percent off' }, /\bpromo\b/],
      [{ ...rule, promo: 10 }, /\bpromo\b/],
      [{ ...rule, promo: { ...promo, discountPercent: 150 } }, /\bdiscountPercent\b/],
      [{ ...rule, promo: { ...promo, discountPercent: '10' } }, /\bdiscountPercent\b/],
      [{ ...rule, promo: { codePrefix: 'TRAIL10' } }, /\bdiscountPercent\b/],
      [{ ...rule, recommend: { limit: 0 } }, /\blimit\b/],
      [{ ...rule, when: { tags: 'jacket' } }, /\btags\b/],
      [{ ...rule, enabled: 'yes' }, /\benabled\b/],
      [{ id, enabled: false }, /\bon\b/],
    ] as const) {
      const refused = await answer(marketer, 'POST', '/items/trigger_rules', body);
      expect(refused, JSON.stringify(body)).toMatchObject({ status: 400, code: 'INVALID_PAYLOAD' });
      expect(refused.message).toMatch(field);
    }
    expect(await stored()).toEqual([]);
    // What the edge reads is taken: an object, its JSON text, or none.
    expect(await as(marketer, 'POST', '/items/trigger_rules', { ...rule, promo })).toBe(200);
    expect(await as(marketer, 'PATCH', `/items/trigger_rules/${id}`, { when: { category: 'kitchen' } })).toBe(
      200,
    );
    const lowerCase = await answer(marketer, 'PATCH', `/items/trigger_rules/${id}`, {
      promo: { ...promo, codePrefix: 'trail' },
    });
    expect(lowerCase).toMatchObject({ status: 400, code: 'INVALID_PAYLOAD' });
    expect(lowerCase.message).toMatch(/\bcodePrefix\b/);
    // A change of many rules at once is judged as well.
    const bulk = await answer(marketer, 'PATCH', '/items/trigger_rules', {
      keys: [id],
      data: { promo: { ...promo, ttlHours: 0 } },
    });
    expect(bulk).toMatchObject({ status: 400, code: 'INVALID_PAYLOAD' });
    expect(bulk.message).toMatch(/\bttlHours\b/);
    expect(await stored()).toMatchObject([{ promo }]);
    const asText = JSON.stringify({ ...promo, discountPercent: 15 });
    expect(await as(marketer, 'PATCH', `/items/trigger_rules/${id}`, { promo: asText })).toBe(200);
    expect(await stored()).toMatchObject([{ promo: { ...promo, discountPercent: 15 } }]);
    expect(await as(marketer, 'PATCH', `/items/trigger_rules/${id}`, { promo: null })).toBe(200);
    expect(await as(marketer, 'DELETE', `/items/trigger_rules/${id}`)).toBe(204);
  });

  it('a marketer cannot save a product or slot variant the edge would skip, and is told which field and what to do', async () => {
    // Each was accepted, then skipped by the edge with a line in the Worker's log alone: the
    // product never recommended, the banner never served (the page kept its own content).
    const product = uniqueId('p-edge-checked');
    const boots = { id: product, slug: product, title: 'Boots', category: 'outdoor', price: 49.9, stock: 3 };
    for (const [body, field] of [
      [{ ...boots, price: -5 }, /\bprice must be a number of 0 or more/],
      [{ ...boots, stock: 1.5 }, /\bstock must be a whole number/],
      [{ ...boots, tags: 'outdoor' }, /\btags must be a JSON list/],
      [{ id: product, title: 'Boots', price: 1 }, /\bslug is required.*\bcategory is required/],
    ] as const) {
      const refused = await answer(marketer, 'POST', '/items/products', body);
      expect(refused, JSON.stringify(body)).toMatchObject({ status: 400, code: 'INVALID_PAYLOAD' });
      expect(refused.message).toMatch(/^Not saved: the edge could not read this product/);
      expect(refused.message).toMatch(field);
    }
    expect(await rows('products', { id: { _eq: product } })).toEqual([]);
    expect(await as(marketer, 'POST', '/items/products', { ...boots, tags: ['boots'] })).toBe(200);
    const negative = await answer(marketer, 'PATCH', `/items/products/${product}`, { price: -1 });
    expect(negative).toMatchObject({ status: 400, code: 'INVALID_PAYLOAD' });
    // A cleared price takes the product off sale (the edge and the shop hide it): on purpose.
    expect(await as(marketer, 'PATCH', `/items/products/${product}`, { price: null })).toBe(200);
    expect(await as(marketer, 'DELETE', `/items/products/${product}`)).toBe(204);

    const slot = uniqueId('banner-checked')
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, '-');
    const variant = { id: slot, slot, kind: 'banner', body: 'Free shipping over 50', isDefault: true };
    const title = await admin<{ meta: { required: boolean } }>('GET', '/fields/slot_content/title');
    expect(title.meta.required).toBe(true);
    for (const [body, field] of [
      [variant, /\btitle is required: the heading the slot shows/],
      [
        { ...variant, title: 'Free shipping', kind: null },
        /\bkind is required: banner, promo or recommendations/,
      ],
    ] as const) {
      const refused = await answer(marketer, 'POST', '/items/slot_content', body);
      expect(refused, JSON.stringify(body)).toMatchObject({ status: 400, code: 'INVALID_PAYLOAD' });
      expect(refused.message).toMatch(/^Not saved: the edge could not read this slot content/);
      expect(refused.message).toMatch(field);
    }
    // Saved with a title, it reaches the shop's pages (the Flow's notice to the Worker).
    expect(await as(marketer, 'POST', '/items/slot_content', { ...variant, title: 'Free shipping' })).toBe(
      200,
    );
    const served = await eventually(async () => {
      const res = await fetch(
        `${DIRECTUS_TEST.workerUrl}/v1/decide?slots=${slot}&writeKey=pk_demo_attune&anonymousId=a-checked`,
      );
      const answered = (await res.json()) as { decisions: Record<string, { title?: string } | undefined> };
      return answered.decisions[slot];
    });
    expect(served.title).toBe('Free shipping');
    const emptied = await answer(marketer, 'PATCH', `/items/slot_content/${slot}`, { title: null });
    expect(emptied).toMatchObject({ status: 400, code: 'INVALID_PAYLOAD' });
    expect(await as(marketer, 'DELETE', `/items/slot_content/${slot}`)).toBe(204);
  });

  it("a marketer sees no person's data: profiles, events, consent records, orders, dead letters", async () => {
    for (const c of ['people', 'events', 'consent_records', 'orders', 'dead_letters', 'erasure_proofs'])
      expect(await as(marketer, 'GET', `/items/${c}`)).toBe(403);
  });

  it('a privacy officer reads the proof of consent and erasure, and orders, and can change none of it', async () => {
    for (const c of [
      'consent_records',
      'policy_versions',
      'erasure_proofs',
      'people',
      'events',
      'dead_letters',
      'orders',
    ])
      expect(await as(officer, 'GET', `/items/${c}?limit=1`)).toBe(200);
    // A record that "proves" a grant nobody gave must not be writable, nor the proof deletable.
    expect(
      await as(officer, 'PATCH', `/items/consent_records/${consentRecord}`, {
        categories: { marketing: true },
      }),
    ).toBe(403);
    expect(await as(officer, 'DELETE', `/items/consent_records/${consentRecord}`)).toBe(403);
    expect(
      await as(officer, 'POST', '/items/consent_records', { id: uniqueId('forged'), site_id: 'demo' }),
    ).toBe(403);
    expect(await as(officer, 'PATCH', '/items/products/p-storm-shell-jacket', { price: 1 })).toBe(403);
    expect(await as(officer, 'PATCH', `/items/orders/${order}`, { user_id: null })).toBe(403);
    expect(await as(officer, 'DELETE', `/items/orders/${order}`)).toBe(403);
  });
});
