/**
 * The shop's identity signatures are expiring ones (the demo site takes no other): a day
 * from when the page was rendered, over the expiry and the user id. Its session cookie's
 * value expires too (30 days, the cookie's max-age): a copy taken out of a browser stops
 * naming the person, whatever the copy's holder does with the cookie's own expiry.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  browserBoundSignature,
  identitySignature,
  readSession,
  SESSION_LIFETIME_SECONDS,
  SIGNATURE_LIFETIME_SECONDS,
  sessionValue,
} from './identity.ts';

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

describe('browserBoundSignature', () => {
  it("is the Worker's own for the same user, browser and expiry (src/identity/signature.test.ts holds the same vector)", () => {
    const now = (1_767_225_600 - SIGNATURE_LIFETIME_SECONDS) * 1000;
    expect(browserBoundSignature('a-long-identity-secret', 'user_ada', 'b1', now)).toBe(
      '1767225600.92b5129da573b8b176b3509e29b3fe026892e06f80d64891b4177ed267eeedb3',
    );
    expect(browserBoundSignature('a-long-identity-secret', 'user_ada', 'b2', now)).not.toMatch(/\.92b5129d/);
  });
});

describe('the session cookie value', () => {
  const SECRET = 'a-long-identity-secret';
  const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
  const DAY = 24 * 60 * 60 * 1000;

  it('names the person for 30 days from sign-in, then no one', () => {
    expect(SESSION_LIFETIME_SECONDS).toBe(30 * 24 * 60 * 60);
    const value = sessionValue(SECRET, 'user_ada', NOW);
    expect(readSession(SECRET, value, NOW)).toBe('user_ada');
    expect(readSession(SECRET, value, NOW + 29 * DAY)).toBe('user_ada');
    expect(readSession(SECRET, value, NOW + 30 * DAY)).toBeUndefined();
    expect(readSession(SECRET, value, NOW + 365 * DAY)).toBeUndefined();
  });

  it('refuses a value whose expiry, user id or signature was edited, or signed with another secret', () => {
    const value = sessionValue(SECRET, 'user_ada', NOW);
    const [expiry, userId, mac] = value.split('.');
    expect(readSession(SECRET, `${Number(expiry) + 1}.${userId}.${mac}`, NOW)).toBeUndefined();
    expect(readSession(SECRET, `${expiry}.user_grace.${mac}`, NOW)).toBeUndefined();
    expect(readSession(SECRET, `${expiry}.${userId}.${'0'.repeat(64)}`, NOW)).toBeUndefined();
    expect(readSession('another-identity-secret', value, NOW)).toBeUndefined();
    expect(readSession(SECRET, undefined, NOW)).toBeUndefined();
    expect(readSession('', value, NOW)).toBeUndefined();
  });

  it('refuses the old, never-expiring form (userId.signature): its holder is signed out', () => {
    const old = `user_ada.${createHmac('sha256', `session:${SECRET}`).update('user_ada').digest('hex')}`;
    expect(readSession(SECRET, old, NOW)).toBeUndefined();
    // Nor is an old value whose user id looks like an expiry taken in the new form.
    const dotted = `4102444800.user_ada.${createHmac('sha256', `session:${SECRET}`).update('4102444800.user_ada').digest('hex')}`;
    expect(readSession(SECRET, dotted, NOW)).toBeUndefined();
  });

  it('is not an identity signature (which the browser sees) under another name', () => {
    const signature = identitySignature(SECRET, 'user_ada', NOW);
    const [expiry, mac] = signature.split('.');
    expect(readSession(SECRET, `${expiry}.user_ada.${mac}`, NOW)).toBeUndefined();
  });
});
