/** Hook signatures: the Worker's verifier against node:crypto-equivalent HMACs. */
import { describe, expect, it } from 'vitest';
import { signHookBody, verifyHookSignature } from './signature.ts';

describe('hook signatures', () => {
  it('verifies its own signature and nothing else', async () => {
    const body = '{"source":"directus","collection":"products"}';
    const secret = 's3cret-s3cret-s3cret';
    const sig = await signHookBody(secret, body);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(await verifyHookSignature(secret, body, sig)).toBe(true);
    expect(await verifyHookSignature(secret, `${body} `, sig)).toBe(false);
    expect(await verifyHookSignature('other-other-other-other', body, sig)).toBe(false);
    expect(await verifyHookSignature('', body, sig)).toBe(false);
    expect(await verifyHookSignature(secret, body, undefined)).toBe(false);
    expect(await verifyHookSignature(secret, body, 'sha256=xyz')).toBe(false);
  });

  it("refuses what is signed with a placeholder secret (the example file's change-me): anyone could sign with it", async () => {
    const body = '{"source":"directus","collection":"products"}';
    expect(await verifyHookSignature('change-me', body, await signHookBody('change-me', body))).toBe(false);
  });

  it('matches a known HMAC-SHA256 (what the Directus Flow script computes)', async () => {
    // RFC 4231 test case 2.
    expect(await signHookBody('Jefe', 'what do ya want for nothing?')).toBe(
      'sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });
});
