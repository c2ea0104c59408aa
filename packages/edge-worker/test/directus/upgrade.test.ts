/**
 * An instance bootstrapped by an earlier release, bootstrapped again by this one (as
 * `./attune up` does after an upgrade): what the schema gained since is added, and what the
 * instance holds is kept.
 */
import { describe, expect, it } from 'vitest';
import { admin, directusControl, uniqueId } from './support.ts';

interface Field {
  schema: { is_indexed: boolean } | null;
}

/** The fields an access request or an erasure finds a person's orders by. */
const ORDER_LOOKUPS = ['site_id', 'user_id', 'anonymous_id'];

const indexed = async (field: string) =>
  (await admin<Field>('GET', `/fields/orders/${field}`)).schema?.is_indexed;

describe('bootstrap of an existing instance', () => {
  it("indexes the orders' person fields an older release left unindexed, keeping the orders", async () => {
    const id = uniqueId('order');
    const userId = uniqueId('user');
    await admin('POST', '/items/orders', {
      id,
      site_id: 'demo',
      user_id: userId,
      anonymous_id: uniqueId('anon'),
      total: 42.5,
      currency: 'EUR',
      items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
      status: 'pending',
    });
    // The instance as a release before the indexes made it.
    for (const field of ORDER_LOOKUPS)
      await admin('PATCH', `/fields/orders/${field}`, { schema: { is_indexed: false } });
    for (const field of ORDER_LOOKUPS) expect(await indexed(field)).toBe(false);

    await directusControl('upgrade');

    for (const field of ORDER_LOOKUPS) expect(await indexed(field), field).toBe(true);
    const order = await admin<{ user_id: string; total: number }>('GET', `/items/orders/${id}`);
    expect(order).toMatchObject({ user_id: userId, total: 42.5 });
  }, 180_000);
});
