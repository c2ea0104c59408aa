// Directus sync benchmark: the real queue consumer (src/sync/consumer.ts, run in Node
// with type stripping) writing 100-event batches into a real local Directus (SQLite),
// against the per-event path (one request per event, same endpoint) on the same
// instance, in the same run; plus one request per event through Directus's items API.
// Reports events/s for both and the ratio. Directus runs on 127.0.0.1:18055 from a fresh
// temporary folder and is stopped afterwards.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const scripts = join(root, 'services/directus/scripts');
const PORT = 18055;
const URL_ = `http://127.0.0.1:${PORT}`;
const TOKEN = `bench-sync-${Date.now().toString(36)}`;
const BULK_EVENTS = Number(process.env.BENCH_SYNC_EVENTS ?? 5000);
const SINGLE_EVENTS = Number(process.env.BENCH_SYNC_SINGLE_EVENTS ?? 500);
const BATCH = 100;

const home = mkdtempSync(join(tmpdir(), 'attune-bench-directus-'));
const env = {
  ...process.env,
  ATTUNE_DIRECTUS_HOME: home,
  ATTUNE_DIRECTUS_PORT: String(PORT),
  ATTUNE_SYNC_TOKEN: TOKEN,
  ATTUNE_WORKER_URL: 'http://127.0.0.1:9',
};
const run = (script) => {
  const r = spawnSync(process.execPath, [join(scripts, script)], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`${script} failed`);
};
let started = false;
function cleanup() {
  if (started) spawnSync(process.execPath, [join(scripts, 'stop.mjs')], { env, stdio: 'ignore' });
  rmSync(home, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const { syncBatch } = await import('../src/sync/consumer.ts');
const { directusClient } = await import('../src/directus/client.ts');
const { eventRow } = await import('../src/sync/mapping.ts');

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let seq = 0;
function ulid() {
  let t = Date.now();
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let n = ++seq;
  let rand = '';
  for (let i = 0; i < 16; i++) {
    rand = CROCKFORD[n % 32] + rand;
    n = Math.floor(n / 32);
  }
  return time + rand;
}

function eventMessage(i) {
  const now = new Date().toISOString();
  return {
    kind: 'event',
    siteId: 'demo',
    personId: `anon:bench-${i % 200}`,
    event: {
      id: ulid(),
      type: 'track',
      name: 'product.viewed',
      timestamp: now,
      anonymousId: `bench-${i % 200}`,
      properties: { productId: `p-${i % 196}`, category: 'outdoor', price: 99.5 },
      context: { page: { path: `/p/${i % 196}` }, locale: 'en-GB' },
      schemaVersion: 1,
    },
    enrichment: { receivedAt: now, correctedTimestamp: now, device: 'desktop', country: 'DE' },
    purposes: ['analytics', 'personalization'],
  };
}

/** A MessageBatch as the Queues runtime hands it over (ack/retry recorded). */
function batchOf(bodies) {
  const outcome = { acked: 0, retried: 0 };
  const messages = bodies.map((body, i) => ({
    id: `m-${seq}-${i}`,
    timestamp: new Date(),
    attempts: 1,
    body,
    ack: () => outcome.acked++,
    retry: () => outcome.retried++,
  }));
  return { batch: { queue: 'attune-events', messages, ackAll() {}, retryAll() {} }, outcome };
}

run('install.mjs');
started = true;
run('bootstrap.mjs');
const workerEnv = { DIRECTUS_URL: URL_, DIRECTUS_TOKEN: TOKEN, EVENTS_DLQ: { send: async () => {} } };
// The erasure check asks each person's ProfileDO (one call per person per batch), which
// needs workerd; in Node nobody was erased. What is measured is the Directus writes.
const options = { isErased: async () => false };
const client = directusClient({ url: URL_, token: TOKEN });

// Warm-up (connections, Directus schema cache) — not measured.
{
  const { batch } = batchOf(Array.from({ length: BATCH }, (_, i) => eventMessage(i)));
  await syncBatch(batch, workerEnv, options);
}

// Bulk: the consumer, 100-message batches (one existence check + one create per batch).
let t0 = performance.now();
let acked = 0;
for (let done = 0; done < BULK_EVENTS; done += BATCH) {
  const { batch, outcome } = batchOf(Array.from({ length: BATCH }, (_, i) => eventMessage(done + i)));
  await syncBatch(batch, workerEnv, options);
  acked += outcome.acked;
  if (outcome.retried > 0) throw new Error('bulk path retried messages; Directus failing?');
}
const bulkSeconds = (performance.now() - t0) / 1000;
if (acked !== BULK_EVENTS) throw new Error(`bulk acked ${acked} of ${BULK_EVENTS}`);

// Per event: one request per event through the same bulk endpoint, same instance.
t0 = performance.now();
for (let i = 0; i < SINGLE_EVENTS; i++) await client.insertEvents([eventRow(eventMessage(i))]);
const singleSeconds = (performance.now() - t0) / 1000;

// Reference: one request per event through Directus's generic items API.
t0 = performance.now();
for (let i = 0; i < SINGLE_EVENTS; i++) await client.createItems('events', [eventRow(eventMessage(i))]);
const itemsSeconds = (performance.now() - t0) / 1000;

const stored = await client.readItems('events', { fields: ['count(id)'] }).catch(() => []);
const bulkRate = BULK_EVENTS / bulkSeconds;
const singleRate = SINGLE_EVENTS / singleSeconds;
console.log('| path | events | seconds | events/s |');
console.log('|---|---:|---:|---:|');
console.log(
  `| consumer, bulk (${BATCH}/batch) | ${BULK_EVENTS} | ${bulkSeconds.toFixed(2)} | ${bulkRate.toFixed(0)} |`,
);
console.log(
  `| one request per event (baseline) | ${SINGLE_EVENTS} | ${singleSeconds.toFixed(2)} | ${singleRate.toFixed(0)} |`,
);
console.log(
  `| one request per event, Directus items API (reference) | ${SINGLE_EVENTS} | ${itemsSeconds.toFixed(2)} | ${(SINGLE_EVENTS / itemsSeconds).toFixed(0)} |`,
);
console.log(
  `\nbulk / per-event: **${(bulkRate / singleRate).toFixed(1)}×** (local Directus 12.4.0 on SQLite, sequential, same run)`,
);
if (Array.isArray(stored) && stored[0]) console.log(`rows in events: ${JSON.stringify(stored[0])}`);
