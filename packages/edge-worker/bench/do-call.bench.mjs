// What one Durable Object call costs under `wrangler dev`, the floor under ingest's
// ProfileDO call: one Worker (bench/do-call/) loaded over loopback with autocannon on three
// paths in round-robin slices — answer 204 after reading the body (the baseline), after
// one JS RPC call to a SQLite-backed Durable Object, after a call that also writes a row —
// reporting requests/s and workerd CPU per request (utime+stime from /proc, both workerd
// processes, per slice). wrangler dev's trace collector and explorer are off, as in the
// ingest bench's first run.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { cpuMs, findWorkerd, waitReady, wranglerServers } from './wrangler-dev.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PORT = 18776;
const INSPECTOR_PORT = 18777;
const SLICES = Number(process.env.BENCH_SLICES ?? 5);
const SLICE_S = Number(process.env.BENCH_SLICE_S ?? 2);
const CONNECTIONS = 8;
const PEOPLE = Number(process.env.BENCH_PEOPLE ?? 500);
// About the size of a 20-event batch.
const BODY = 'x'.repeat(12_000);

const servers = wranglerServers('attune-bench-do-call-', 'off');
const server = servers.start(join(here, 'do-call', 'wrangler.toml'), PORT, INSPECTOR_PORT, 'do-call');
const base = `http://127.0.0.1:${PORT}`;

const paths = [
  { label: 'baseline: read the body, answer 204', path: '/none' },
  { label: 'one RPC call to a SQLite Durable Object', path: `/call?people=${PEOPLE}` },
  { label: 'one RPC call that also writes a row', path: `/write?people=${PEOPLE}` },
];

function run(path, seconds) {
  return new Promise((resolve, reject) => {
    autocannon(
      { url: base + path, connections: CONNECTIONS, duration: seconds, method: 'POST', body: BODY },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

async function main() {
  await waitReady(`${base}/none`, server);
  const workerd = findWorkerd(server.child.pid);
  const cpu = () => workerd.reduce((sum, p) => sum + (cpuMs(p) || 0), 0);
  for (const { path } of paths) await run(path, 2);
  const acc = new Map(paths.map((p) => [p, { answered: 0, cpu: 0, non2xx: 0 }]));
  for (let i = 0; i < SLICES; i++) {
    for (const p of paths) {
      const a = acc.get(p);
      const before = cpu();
      const result = await run(p.path, SLICE_S);
      a.cpu += cpu() - before;
      a.answered += result.requests.total;
      a.non2xx += result.non2xx + result.errors;
    }
  }
  console.log(
    `One Worker under wrangler dev, ${CONNECTIONS} closed-loop connections, 12 KB POST bodies, ${PEOPLE} objects, ${SLICES} round-robin slices of ${SLICE_S} s per path.\n`,
  );
  console.log('| path | requests/s | workerd CPU ms / request | CPU above baseline, ms | non-2xx |');
  console.log('|---|---:|---:|---:|---:|');
  const baseline = acc.get(paths[0]);
  const perRequest = (a) => a.cpu / Math.max(1, a.answered);
  for (const p of paths) {
    const a = acc.get(p);
    console.log(
      `| ${p.label} | ${(a.answered / (SLICES * SLICE_S)).toFixed(0)} | ${perRequest(a).toFixed(2)} | ${(perRequest(a) - perRequest(baseline)).toFixed(2)} | ${a.non2xx} |`,
    );
  }
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
