/**
 * The Worker's Directus token (role attune-sync) can do what the sync needs and nothing
 * else: no system collections, no catalog writes, no orders, no admin.
 */
import { describe, expect, it } from 'vitest';
import { DIRECTUS_TEST } from './constants.mjs';
import { eventMessage, uniqueId } from './support.ts';

async function asSync(method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${DIRECTUS_TEST.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${DIRECTUS_TEST.syncToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await res.body?.cancel();
  return res.status;
}

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
    expect(await asSync('POST', '/items/products', { id: 'p-forged', title: 'forged' })).toBe(403);
    expect(await asSync('PATCH', '/items/consent_categories/marketing', { default: true })).toBe(403);
    expect(await asSync('DELETE', '/items/consent_categories/analytics')).toBe(403);
    expect(await asSync('POST', '/items/sites', { id: 'evil', write_key: 'pk_evil' })).toBe(403);
  });

  it('may not read orders, rewrite or delete erasure proofs', async () => {
    expect(await asSync('GET', '/items/orders')).toBe(403);
    expect(await asSync('PATCH', '/items/erasure_proofs/any', { site_id: 'x' })).toBe(403);
    expect(await asSync('DELETE', '/items/erasure_proofs/any')).toBe(403);
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
