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

describe('an identity secret that is not the site’s own', () => {
  /** Both shops of one Worker given one identity secret (a secrets block copied from the first shop). */
  const sharing = {
    ...twoSites,
    ATTUNE_SITE_SECRETS: JSON.stringify({
      demo: { identitySecret: 'one-identity-secret-for-both', serverKey: 'sk_test_server_key' },
      other: { identitySecret: 'one-identity-secret-for-both', serverKey: 'sk_other_server_key' },
    }),
  } as unknown as Env;

  it("a user id the other shop signed names no one here: its user jane@… is not this shop's", async () => {
    // An attacker registers jane@example.com on the other shop (its sign-up checks no email) and
    // copies the signature its backend put in the page; jane is a customer of this shop.
    const userId = `jane-${anonId()}@example.com`;
    const signature = await signUserId('one-identity-secret-for-both', userId);
    const res = await collect(
      [makeEvent(anonId(), 'user.signed_in', { userId, userIdSignature: signature })],
      {
        origin: 'http://localhost:3000',
        env: sharing,
      },
    );
    // Before, 200: the attacker's browser was linked to jane's profile on this shop.
    expect(res.status).toBe(400);
    expect(await viewProfile(sharing, 'demo', `user:${userId}`)).toBeNull();
  });

  it('a public write key used as the identity secret signs in no one', async () => {
    const publicSecret = 'pk_other_attune_public_key';
    const config = {
      ...twoSites,
      ATTUNE_SITES: JSON.stringify([
        { id: 'demo', writeKey: 'pk_demo_attune', allowedOrigins: ['http://localhost:3000'] },
        { id: 'other', writeKey: publicSecret, allowedOrigins: ['http://other.test'] },
      ]),
      ATTUNE_SITE_SECRETS: JSON.stringify({
        demo: { identitySecret: publicSecret, serverKey: 'sk_test_server_key' },
        other: { identitySecret: 'other-identity-secret', serverKey: 'sk_other_server_key' },
      }),
    } as unknown as Env;
    const userId = `victim-${anonId()}`;
    const res = await collect(
      [
        makeEvent(anonId(), 'user.signed_in', {
          userId,
          userIdSignature: await signUserId(publicSecret, userId),
        }),
      ],
      { origin: 'http://localhost:3000', env: config },
    );
    // Before, 200: every page of the other shop carries the key anyone could sign with.
    expect(res.status).toBe(400);
    expect(await viewProfile(config, 'demo', `user:${userId}`)).toBeNull();
  });
});
