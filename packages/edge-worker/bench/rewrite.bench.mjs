// Edge rewriting benchmark: the same ~60 KB product page (3 slots, origin thinks 20 ms or
// 100 ms, then streams in 8 KB chunks) fetched through the Worker under `wrangler dev`, rewritten for a
// consented person vs proxied untouched (no Attune cookie), interleaved in the same run.
// Time to first byte (first body byte), to the end of the first slot (the hero, the first
// personalized content) and total, from a Node HTTP client on 127.0.0.1.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { CATALOG, fmt, PORTS, seedPeople, startStack, summarize } from './decide-harness.mjs';

function get(path, cookie) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let ttfb = 0;
    let slot = 0;
    let body = '';
    const req = http.get(
      {
        host: '127.0.0.1',
        port: PORTS.worker,
        path,
        headers: { accept: 'text/html', ...(cookie ? { cookie } : {}), 'accept-encoding': 'identity' },
      },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          if (ttfb === 0) ttfb = performance.now() - start;
          body += chunk;
          // The hero is the page's first <section>: its end tag is the first one.
          if (slot === 0 && body.includes('</section>')) slot = performance.now() - start;
        });
        res.on('end', () =>
          resolve({ ttfb, slot, total: performance.now() - start, body, status: res.statusCode }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

const stop = await startStack();
try {
  const [person] = await seedPeople(1, 'rewrite');
  const cookie = `attune_aid=${person}`;
  const page = (i) => `/products/${CATALOG.products[(i * 13) % 200].slug}`;
  for (let i = 0; i < 30; i++) {
    await get(page(i));
    await get(page(i), cookie);
  }
  const check = await get(page(0), cookie);
  const filled = (check.body.match(/data-attune-variant=/g) ?? []).length;
  console.log(
    `### Product page through the edge proxy: rewritten (${filled} slots filled) vs proxied untouched, 200 interleaved pairs per origin\n`,
  );
  console.log(
    '| origin think time | | TTFB p50 ms | TTFB p90 ms | first slot p50 ms | total p50 ms | total p90 ms | bytes |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const think of [20, 100]) {
    const plain = { ttfb: [], slot: [], total: [] };
    const rewritten = { ttfb: [], slot: [], total: [] };
    let bytesPlain = 0;
    let bytesRewritten = 0;
    for (let i = 0; i < 200; i++) {
      // Alternate which goes first, so neither always gets the warmer moment.
      const order = i % 2 === 0 ? [false, true] : [true, false];
      for (const withCookie of order) {
        const r = await get(`${page(i)}?think=${think}`, withCookie ? cookie : undefined);
        if (r.status !== 200) throw new Error(`status ${r.status}`);
        const into = withCookie ? rewritten : plain;
        into.ttfb.push(r.ttfb);
        into.slot.push(r.slot);
        into.total.push(r.total);
        if (withCookie) bytesRewritten = r.body.length;
        else bytesPlain = r.body.length;
      }
    }
    const p = { ttfb: summarize(plain.ttfb), slot: summarize(plain.slot), total: summarize(plain.total) };
    const w = {
      ttfb: summarize(rewritten.ttfb),
      slot: summarize(rewritten.slot),
      total: summarize(rewritten.total),
    };
    console.log(
      `| ${think} ms | rewritten (consented person) | ${fmt(w.ttfb.p50)} | ${fmt(w.ttfb.p90)} | ${fmt(w.slot.p50)} | ${fmt(w.total.p50)} | ${fmt(w.total.p90)} | ${bytesRewritten} |`,
    );
    console.log(
      `| ${think} ms | baseline: proxied, not rewritten | ${fmt(p.ttfb.p50)} | ${fmt(p.ttfb.p90)} | ${fmt(p.slot.p50)} | ${fmt(p.total.p50)} | ${fmt(p.total.p90)} | ${bytesPlain} |`,
    );
    console.log(
      `| ${think} ms | **ratio rewritten / plain** | **${fmt(w.ttfb.p50 / p.ttfb.p50)}** | ${fmt(w.ttfb.p90 / p.ttfb.p90)} | ${fmt(w.slot.p50 / p.slot.p50)} | **${fmt(w.total.p50 / p.total.p50)}** | ${fmt(w.total.p90 / p.total.p90)} | |`,
    );
  }
  console.log('\nTargets: total ratio <= 1.15, TTFB unchanged (ratio ~1.00).\n');
} finally {
  await stop();
}
