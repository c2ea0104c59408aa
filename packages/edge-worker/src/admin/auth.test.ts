/**
 * HTTP Basic auth as Segment libraries send it: the server key as the username, an empty
 * password (`key:`), base64 of UTF-8.
 */
import { describe, expect, it } from 'vitest';
import { basicUsername } from './auth.ts';

const basic = (text: string) => `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(text)))}`;

describe('basicUsername', () => {
  it('takes the key a Segment library sends with an empty password, even a key with a colon in it', () => {
    expect(basicUsername(basic('sk_live_abc:'))).toBe('sk_live_abc');
    expect(basicUsername(basic('sk_abc:defghijklmnop:'))).toBe('sk_abc:defghijklmnop');
  });

  it('keeps the username of user:password, and reads UTF-8', () => {
    expect(basicUsername(basic('sk_abc:secret'))).toBe('sk_abc');
    expect(basicUsername(basic('sk_clé:'))).toBe('sk_clé');
  });

  it('answers nothing for what is not Basic auth', () => {
    expect(basicUsername('Basic %%%')).toBeUndefined();
    expect(basicUsername('Bearer abc')).toBeUndefined();
    expect(basicUsername(undefined)).toBeUndefined();
  });
});
