/**
 * An erasure's running proof against a stand-in Directus: which requests it makes while the
 * erasure goes, that a closed proof stops the erasure, and the proof written once at the
 * end on an instance without the extension's route. The counting itself (added in the
 * database, a closed proof left alone) is the extension's: test/directus/sync.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { directusClient } from '../directus/client.ts';
import { openErasureProof, type ProofIdentity } from './erasure-proof.ts';

const identity: ProofIdentity = {
  id: '01JDZ00000000000000000PROOF',
  site_id: 'demo',
  reason: 'request',
  requested_at: '2026-11-26T09:00:00.000Z',
};

/** A Directus whose extension answers `closed` (or has no route), recording each request. */
function standIn(route: { closed: boolean } | 'missing' | 'refused') {
  const requests: { method: string; path: string; body: unknown }[] = [];
  const client = directusClient({
    url: 'http://directus.test',
    token: 't',
    fetch: async (input, init) => {
      const { pathname } = new URL(String(input));
      const method = init?.method ?? 'GET';
      requests.push({ method, path: pathname, body: init?.body ? JSON.parse(String(init.body)) : undefined });
      if (pathname === '/attune-sync/erasure-proofs')
        return route === 'missing'
          ? Response.json({ errors: [{ message: 'Route not found' }] }, { status: 404 })
          : route === 'refused'
            ? Response.json(
                {
                  errors: [
                    {
                      message: 'proof.requested_at must be an ISO date-time',
                      extensions: { code: 'FAILED_VALIDATION' },
                    },
                  ],
                },
                { status: 400 },
              )
            : Response.json({ data: route });
      // The items API: no proof stored yet, and a create succeeds.
      return Response.json({ data: [] });
    },
  });
  return { client, requests };
}

describe('the running proof of an erasure', () => {
  it('is opened, counted into after each step that deleted something, and closed', async () => {
    const { client, requests } = standIn({ closed: false });
    const proof = await openErasureProof(client, identity);
    if (proof === undefined) throw new Error('the proof should be open');
    await proof.add('events_deleted', 500);
    await proof.add('events_deleted', 3);
    await proof.add('consent_records_deleted', 0);
    await proof.close();
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual(
      Array.from({ length: 4 }, () => 'POST /attune-sync/erasure-proofs'),
    );
    expect(requests.map((r) => r.body)).toEqual([
      { proof: identity },
      { proof: identity, add: { events_deleted: 500 } },
      { proof: identity, add: { events_deleted: 3 } },
      { proof: identity, erasedAt: expect.any(String) },
    ]);
  });

  it('is not there to count into when it is closed: the erasure was done', async () => {
    const { client, requests } = standIn({ closed: true });
    expect(await openErasureProof(client, identity)).toBeUndefined();
    expect(requests).toHaveLength(1);
  });

  it('is written once, when the erasure is done, where Directus has no route to count into it', async () => {
    const { client, requests } = standIn('missing');
    const proof = await openErasureProof(client, identity);
    if (proof === undefined) throw new Error('the proof should be open');
    await proof.add('events_deleted', 4);
    await proof.add('events_deleted', 1);
    await proof.add('people_deleted', 1);
    expect(requests).toHaveLength(1);
    await proof.close();
    const create = requests.find((r) => r.method === 'POST' && r.path === '/items/erasure_proofs');
    expect(create?.body).toEqual([
      {
        ...identity,
        erased_at: expect.any(String),
        people_deleted: 1,
        events_deleted: 5,
        consent_records_deleted: 0,
        dead_letters_deleted: 0,
        orders_anonymized: 0,
      },
    ]);
  });

  it('does not hold back the erasure when Directus refuses the proof outright: it is written when done', async () => {
    const { client, requests } = standIn('refused');
    const proof = await openErasureProof(client, identity);
    if (proof === undefined) throw new Error('the erasure should go on');
    await proof.add('events_deleted', 2);
    await proof.close();
    const create = requests.find((r) => r.method === 'POST' && r.path === '/items/erasure_proofs');
    expect(create?.body).toEqual([expect.objectContaining({ ...identity, events_deleted: 2 })]);
  });
});
