/** `./attune up`'s ports: moved by environment variables, refused with the variable named. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_PORTS, portsFromEnv } from './up.mjs';

test('the defaults without variables, each port moved by its own', () => {
  assert.deepEqual(portsFromEnv({}), DEFAULT_PORTS);
  assert.deepEqual(portsFromEnv({ ATTUNE_DIRECTUS_PORT: '19055', ATTUNE_SHOP_PORT: '' }), {
    ...DEFAULT_PORTS,
    directus: 19055,
  });
  assert.deepEqual(
    portsFromEnv({ ATTUNE_SHOP_PORT: '19300', ATTUNE_WORKER_PORT: '19787', ATTUNE_DIRECTUS_PORT: '19055' }),
    { shop: 19300, worker: 19787, directus: 19055 },
  );
});

test('a value that is not a port, or two services on one port, is refused with what to fix', () => {
  for (const value of ['80a', '0', '70000', '-1', '8787.5'])
    assert.throws(
      () => portsFromEnv({ ATTUNE_WORKER_PORT: value }),
      /^Error: ATTUNE_WORKER_PORT=.* is not a port/,
    );
  assert.throws(
    () => portsFromEnv({ ATTUNE_SHOP_PORT: '8787' }),
    /three different ports \(given 8787, 8787, 8055\)/,
  );
});
