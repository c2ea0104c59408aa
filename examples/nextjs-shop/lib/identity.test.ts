/**
 * The shop's identity signatures are expiring ones (the demo site takes no other): a day
 * from when the page was rendered, over the expiry and the user id.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { identitySignature, SIGNATURE_LIFETIME_SECONDS } from './identity.ts';

describe('identitySignature', () => {
  it('is <expiry>.<hex>: a day ahead, the HMAC-SHA256 of "<expiry>.<userId>"', () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 0, 500);
    const signature = identitySignature('a-long-identity-secret', 'user_ada', now);
    const [expiry, hex] = signature.split('.');
    expect(Number(expiry)).toBe(Math.floor(now / 1000) + SIGNATURE_LIFETIME_SECONDS);
    expect(SIGNATURE_LIFETIME_SECONDS).toBe(86_400);
    expect(hex).toBe(
      createHmac('sha256', 'a-long-identity-secret').update(`${expiry}.user_ada`).digest('hex'),
    );
    // The expiry is signed: another one is another signature.
    expect(identitySignature('a-long-identity-secret', 'user_ada', now + 1000)).not.toBe(signature);
  });
});
