/**
 * Two sites, one Worker: one site's credentials never act for the other. Its server key does
 * not make the other's events trusted, and a user id signed with its identity secret is not
 * the other site's user.
 */
import { describe, expect, it } from 'vitest';
import { twoSitesEnv } from '../admin/test-support.ts';
import { signUserId } from '../identity/index.ts';
import { viewProfile } from '../profile/client.ts';
import { anonId, collect, makeEvent } from './test-support.ts';

const twoSites = twoSitesEnv();
const basic = (key: string) => `Basic ${btoa(`${key}:`)}`;

describe('one site’s credentials on another site', () => {
  it("another site's server key does not make this site's events trusted (an Origin is still required)", async () => {
    const res = await collect([makeEvent(anonId())], {
      writeKey: 'pk_demo_attune',
      origin: null,
      env: twoSites,
      headers: { authorization: basic('sk_other_server_key') },
    });
    expect(res.status).toBe(403);
    // Its own server key is trusted without one.
    const own = await collect([makeEvent(anonId())], {
      writeKey: 'pk_demo_attune',
      origin: null,
      env: twoSites,
      headers: { authorization: basic('sk_test_server_key') },
    });
    expect(own.status).toBe(200);
  });

  it("a user id signed with another site's identity secret names no one here", async () => {
    const userId = `tenant-${anonId()}`;
    const event = makeEvent(anonId(), 'page.viewed', {
      userId,
      userIdSignature: await signUserId('other-identity-secret', userId),
    });
    const res = await collect([event], { origin: 'http://localhost:3000', env: twoSites });
    expect(res.status).not.toBe(200);
    expect(await viewProfile(twoSites, 'demo', `user:${userId}`)).toBeNull();
  });
});
