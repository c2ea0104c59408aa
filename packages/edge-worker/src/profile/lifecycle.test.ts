/**
 * A person's lifecycle across Durable Objects: erasure while their merged browsers are
 * still sending, the retention alarm when the queue is briefly unavailable, and an older
 * event arriving after newer ones.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { ErasureMessage } from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  anonId,
  collect,
  inactivePastRetention,
  people,
  productView,
  recordQueue,
  SITE,
  signed,
} from '../ingest/test-support.ts';
import { profileStub, viewProfile } from './client.ts';
import { ProfileDO } from './profile-do.ts';

let queue = recordQueue();
afterEach(() => {
  queue.restore();
  queue = recordQueue();
});

/** Resolves with `value`, or with 'timed out' after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timed out'> {
  return Promise.race([
    promise,
    new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), ms)),
  ]);
}

describe('erasure while a merged browser is sending', () => {
  it('finishes instead of deadlocking with the browser forwarding its event to the person', async () => {
    const userId = `u-${anonId()}`;
    const signature = await signed(userId);
    const browsers = Array.from({ length: 12 }, () => anonId('b'));
    // Each browser signs in once: the person takes it over and it becomes an alias.
    await collect(browsers.map((b) => productView(b, 'p1', 'shoes', { userId, userIdSignature: signature })));
    const last = browsers[browsers.length - 1] ?? '';
    expect(await profileStub(env, SITE, `anon:${last}`).aliasOf()).toBe(`user:${userId}`);

    // The person is erased while one of their browsers sends an anonymous event.
    const erase = people(`user:${userId}`, 'DELETE');
    const racing = collect([productView(last, 'p2', 'hats')]);
    const outcome = await within(Promise.all([erase, racing]), 10_000);
    expect(outcome).not.toBe('timed out');
    if (outcome === 'timed out') return;
    expect(outcome[0].status).toBe(200);
    expect(await viewProfile(env, SITE, `user:${userId}`)).toBeNull();
    expect(await viewProfile(env, SITE, `anon:${last}`)).toBeNull();
  }, 20_000);
});

describe('an erasure that fails part-way', () => {
  it('is finished by a retried DELETE: every merged browser tombstoned, every id sent downstream', async () => {
    const userId = `u-${anonId()}`;
    const signature = await signed(userId);
    const browsers = [anonId('b'), anonId('b')];
    await collect(browsers.map((b) => productView(b, 'p1', 'shoes', { userId, userIdSignature: signature })));
    // The first browser's object is unavailable during the first DELETE.
    vi.spyOn(ProfileDO.prototype, 'tombstone').mockRejectedValueOnce(new Error('object unavailable'));
    const failed = await people(`user:${userId}`, 'DELETE');
    expect(failed.status).toBeGreaterThanOrEqual(500);
    vi.restoreAllMocks();
    queue.restore();
    queue = recordQueue();

    const retried = await people(`user:${userId}`, 'DELETE');
    expect(retried.status).toBe(200);
    for (const b of browsers) {
      expect(await profileStub(env, SITE, `anon:${b}`).erasedAt()).not.toBeNull();
      // A later anonymous event of that browser creates nobody.
      await collect([productView(b, 'p2', 'hats')]);
    }
    expect(await viewProfile(env, SITE, `user:${userId}`)).toBeNull();
    const erasure = queue.messages.find((m): m is ErasureMessage => m.kind === 'erasure');
    expect(erasure?.anonymousIds.toSorted()).toEqual(browsers.toSorted());
  });
});

describe('retention alarm and the queue', () => {
  it('a failed erasure send is retried with the alarm, not lost', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const stub = profileStub(env, SITE, `anon:${a}`);
    await inactivePastRetention(stub);

    // The queue is briefly unavailable when the alarm fires: the handler fails …
    vi.mocked(env.EVENTS.send).mockImplementationOnce(async () => {
      throw new Error('queue unavailable');
    });
    await expect(runDurableObjectAlarm(stub)).rejects.toThrow('queue unavailable');
    // … and the runtime runs it again (alarms are retried when their handler throws).
    await runInDurableObject(stub, (instance: ProfileDO) => instance.alarm());

    const erasures = queue.messages.filter(
      (m): m is ErasureMessage => m.kind === 'erasure' && m.personId === `anon:${a}`,
    );
    expect(erasures).toHaveLength(1);
    expect(await viewProfile(env, SITE, `anon:${a}`)).toBeNull();
  });
});

describe('events arriving out of order', () => {
  it('an older event flushed late (an offline queue) moves firstSeen back to it', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const firstSeen = (await viewProfile(env, SITE, `anon:${a}`))?.firstSeen ?? '';
    const twoHoursAgo = Date.now() - 2 * 60 * 60 * 1000;
    await collect([productView(a, 'p0', 'hats', { timestamp: new Date(twoHoursAgo).toISOString() })]);
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.counters['product.viewed']).toBe(2);
    expect(Date.parse(view?.firstSeen ?? '')).toBeLessThan(Date.parse(firstSeen));
    expect(Math.abs(Date.parse(view?.firstSeen ?? '') - twoHoursAgo)).toBeLessThan(5_000);
  });
});
