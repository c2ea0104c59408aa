// Which signatures name a user id: plain ones on a plain site, unexpired expiring ones on
// an expiring site, unexpired ones covering the event's browser on a bound site; an expired
// one, or one of an older form than the site takes, is `expired` (the
// site made it, it names no one now); anything else is refused with what to fix.
import { describe, expect, it } from 'vitest';
import { checkUserIdSignature, signUserId, signUserIdForBrowser, signUserIdUntil } from './index.ts';

const SECRET = 'a-long-identity-secret';
const plain = { identitySecret: SECRET, signatures: 'plain' as const };
const expiring = { identitySecret: SECRET, signatures: 'expiring' as const };
const bound = { identitySecret: SECRET, signatures: 'bound' as const };
const NOW = Date.UTC(2026, 10, 28, 12);
const HOUR = 3600;
const nowSeconds = NOW / 1000;

describe('checkUserIdSignature', () => {
  it('a plain site takes the plain HMAC of the user id, and refuses the expiring form', async () => {
    expect(await checkUserIdSignature(plain, 'u1', await signUserId(SECRET, 'u1'), NOW)).toEqual({
      verdict: 'valid',
    });
    const check = await checkUserIdSignature(
      plain,
      'u1',
      await signUserIdUntil(SECRET, 'u1', nowSeconds + HOUR),
      NOW,
    );
    expect(check).toMatchObject({ verdict: 'invalid' });
    expect(check.verdict === 'invalid' && check.message).toMatch(/this site takes plain signatures/);
  });

  it('an expiring site takes an expiring signature until its expiry, then calls it expired', async () => {
    const signature = await signUserIdUntil(SECRET, 'u1', nowSeconds + HOUR);
    expect(signature).toMatch(/^\d+\.[\da-f]{64}$/);
    expect(await checkUserIdSignature(expiring, 'u1', signature, NOW)).toEqual({ verdict: 'valid' });
    expect(await checkUserIdSignature(expiring, 'u1', signature.toUpperCase(), NOW)).toEqual({
      verdict: 'valid',
    });
    expect(await checkUserIdSignature(expiring, 'u1', signature, NOW + HOUR * 1000)).toEqual({
      verdict: 'expired',
    });
  });

  it('an expiring site refuses a moved expiry, another user id and a wrong key, saying which form it takes', async () => {
    const signature = await signUserIdUntil(SECRET, 'u1', nowSeconds - 60);
    const [, hex] = signature.split('.');
    const refusals = [
      // The expired signature given a later expiry: the HMAC covers the expiry.
      await checkUserIdSignature(expiring, 'u1', `${nowSeconds + HOUR}.${hex}`, NOW),
      await checkUserIdSignature(expiring, 'u2', await signUserIdUntil(SECRET, 'u1', nowSeconds + HOUR), NOW),
      await checkUserIdSignature(
        expiring,
        'u1',
        await signUserIdUntil('another-long-secret', 'u1', nowSeconds + HOUR),
        NOW,
      ),
      await checkUserIdSignature(expiring, 'u1', await signUserId('another-long-secret', 'u1'), NOW),
      await checkUserIdSignature(expiring, 'u1', undefined, NOW),
    ];
    for (const check of refusals) {
      expect(check.verdict).toBe('invalid');
      expect(check.verdict === 'invalid' && check.message).toMatch(
        /this site takes expiring signatures only/,
      );
    }
  });

  it("an expiring site takes the site's own plain signature as expired (made before it moved), never as valid", async () => {
    expect(await checkUserIdSignature(expiring, 'u1', await signUserId(SECRET, 'u1'), NOW)).toEqual({
      verdict: 'expired',
    });
  });

  it('a short secret verifies no signature of either form', async () => {
    const short = 'short';
    const site = { identitySecret: short, signatures: 'expiring' as const };
    expect(
      (await checkUserIdSignature(site, 'u1', await signUserIdUntil(short, 'u1', nowSeconds + HOUR), NOW))
        .verdict,
    ).toBe('invalid');
    expect(
      (await checkUserIdSignature({ ...site, signatures: 'plain' }, 'u1', await signUserId(short, 'u1'), NOW))
        .verdict,
    ).toBe('invalid');
  });

  it('a bound site takes a signature for the browser it covers only, until its expiry', async () => {
    const signature = await signUserIdForBrowser(SECRET, 'u1', 'browser-1', nowSeconds + HOUR);
    expect(signature).toMatch(/^\d+\.[\da-f]{64}$/);
    expect(await checkUserIdSignature(bound, 'u1', signature, NOW, 'browser-1')).toEqual({
      verdict: 'valid',
    });
    expect(await checkUserIdSignature(bound, 'u1', signature, NOW + HOUR * 1000, 'browser-1')).toEqual({
      verdict: 'expired',
    });
    const refusals = [
      await checkUserIdSignature(bound, 'u1', signature, NOW, 'browser-2'),
      await checkUserIdSignature(bound, 'u1', signature, NOW, undefined),
      await checkUserIdSignature(bound, 'u2', signature, NOW, 'browser-1'),
      // Ids holding dots are not confusable: user `bob` on browser `smith.b1` is not `bob.smith` on `b1`.
      await checkUserIdSignature(
        bound,
        'bob.smith',
        await signUserIdForBrowser(SECRET, 'bob', 'smith.b1', nowSeconds + HOUR),
        NOW,
        'b1',
      ),
    ];
    for (const check of refusals) {
      expect(check.verdict).toBe('invalid');
      expect(check.verdict === 'invalid' && check.message).toMatch(
        /does not match userId and this event's anonymousId; .*this site takes browser-bound signatures only/,
      );
    }
  });

  it("signs as the shop's helper does (examples/nextjs-shop/lib/identity.test.ts holds the same vector)", async () => {
    expect(await signUserIdForBrowser(SECRET, 'user_ada', 'b1', 1_767_225_600)).toBe(
      '1767225600.92b5129da573b8b176b3509e29b3fe026892e06f80d64891b4177ed267eeedb3',
    );
  });

  it("a bound site takes the site's own older forms as expired, whichever browser they name", async () => {
    for (const older of [
      await signUserId(SECRET, 'u1'),
      await signUserIdUntil(SECRET, 'u1', nowSeconds + HOUR),
    ])
      expect(await checkUserIdSignature(bound, 'u1', older, NOW, 'browser-1')).toEqual({
        verdict: 'expired',
      });
  });
});
