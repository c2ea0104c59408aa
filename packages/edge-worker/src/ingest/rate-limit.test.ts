/** The per-IP rate limit cannot be dodged by rotating addresses an attacker holds anyway. */
import { describe, expect, it } from 'vitest';
import { rateLimitAddress } from './rate-limit.ts';
import {
  anonId,
  collect,
  envWithSites,
  makeEvent,
  ORIGIN,
  recordQueue,
  SITE,
  WRITE_KEY,
} from './test-support.ts';

recordQueue();

/** The test site with its per-IP limit set to `ipPerSecond` and `ipBurst`. */
const limitedTo = (ipPerSecond: number, ipBurst: number) =>
  envWithSites([
    {
      id: SITE,
      writeKey: WRITE_KEY,
      allowedOrigins: [ORIGIN],
      settings: { rateLimit: { ipPerSecond, ipBurst } },
    },
  ]);

const tight = limitedTo(0.01, 2);

describe('a per-IP limiter that fails', () => {
  it('lets the batch through rather than answer 500 (its Durable Object overloaded or unreachable)', async () => {
    // The same objects (the counters live in one too), whose per-IP leases fail.
    const failing = {
      ...tight,
      RATE_LIMITER: {
        idFromName: (name: string) => tight.RATE_LIMITER.idFromName(name),
        get: (id: DurableObjectId) => {
          const real = tight.RATE_LIMITER.get(id);
          return {
            addCounts: (counts: Record<string, number>) => real.addCounts(counts),
            lease: async () => {
              throw new Error('Durable Object is overloaded');
            },
          };
        },
      },
    } as unknown as Env;
    const res = await collect([makeEvent(anonId())], {
      env: failing,
      headers: { 'cf-connecting-ip': '198.51.100.77' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ accepted: 1 });
  });
});

describe('per-IP rate limit and IPv6', () => {
  it('limits one IPv6 /64 (one subscriber) as one address: rotating the interface id does not reset it', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) {
      const res = await collect([makeEvent(anonId())], {
        env: tight,
        headers: { 'cf-connecting-ip': `2001:db8:77:1::${i.toString(16)}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    // Another /64 has its own bucket.
    const other = await collect([makeEvent(anonId())], {
      env: tight,
      headers: { 'cf-connecting-ip': '2001:db8:77:2::1' },
    });
    expect(other.status).toBe(200);
  });

  it('charges a batch one token per browser it carries: made-up browsers cannot ride on one request', async () => {
    const limited = limitedTo(0.01, 5);
    const headers = { 'cf-connecting-ip': '203.0.113.77' };
    const five = Array.from({ length: 5 }, () => makeEvent(anonId()));
    expect((await collect(five, { env: limited, headers })).status).toBe(200);
    const next = await collect([makeEvent(anonId())], { env: limited, headers });
    expect(next.status).toBe(429);
    expect(Number(next.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('refuses a batch the bucket cannot pay yet without taking its tokens, and says when it can', async () => {
    const limited = limitedTo(1, 5);
    const headers = { 'cf-connecting-ip': '203.0.113.78' };
    const five = () => Array.from({ length: 5 }, () => makeEvent(anonId()));
    expect((await collect(five(), { env: limited, headers })).status).toBe(200);
    const refused = await collect(five(), { env: limited, headers });
    expect(refused.status).toBe(429);
    // Five browsers at one token a second: not back in one second, which would only fail again.
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(4);
  });

  it('takes a burst within the limit whose requests arrive together (each leased a block the others could spend)', async () => {
    // The defaults: 50 a second, a burst of 200; 30 one-browser batches cost 30 tokens.
    const defaults = envWithSites([{ id: SITE, writeKey: WRITE_KEY, allowedOrigins: [ORIGIN] }]);
    const headers = { 'cf-connecting-ip': `203.0.113.${Math.floor(Math.random() * 250) + 1}` };
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => collect([makeEvent(anonId('together'))], { env: defaults, headers })),
    );
    expect(answers.map((r) => r.status)).toEqual(Array.from({ length: 30 }, () => 200));
  });

  it('takes from the bucket about what requests arriving together spend, so the rest of the burst stays usable', async () => {
    // A burst of 60 that barely refills, leased in blocks of 6: 30 one-browser batches at
    // once, then, once their lease has lapsed, a batch of 20 browsers. Each of the 30 leasing
    // its own block emptied the bucket, and the 30 tokens left unspent lapsed with the lease;
    // now at most one block is left over.
    const slow = limitedTo(0.01, 60);
    const headers = { 'cf-connecting-ip': `198.51.100.${Math.floor(Math.random() * 250) + 1}` };
    const together = await Promise.all(
      Array.from({ length: 30 }, () => collect([makeEvent(anonId('together'))], { env: slow, headers })),
    );
    expect(together.map((r) => r.status)).toEqual(Array.from({ length: 30 }, () => 200));
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const wide = Array.from({ length: 20 }, () => makeEvent(anonId('wide')));
    expect((await collect(wide, { env: slow, headers })).status).toBe(200);
  }, 15_000);

  it('keys addresses: IPv4 as is, IPv6 by /64 in any notation, IPv4-mapped as IPv4', () => {
    expect(rateLimitAddress('203.0.113.9')).toBe('203.0.113.9');
    expect(rateLimitAddress('2001:db8:1:2::5')).toBe('2001:db8:1:2::/64');
    expect(rateLimitAddress('2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(rateLimitAddress('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(rateLimitAddress('::1')).toBe('0:0:0:0::/64');
    expect(rateLimitAddress('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(rateLimitAddress('unknown')).toBe('unknown');
  });
});
