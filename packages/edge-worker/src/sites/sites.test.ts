/**
 * The site directory built from configuration: mistakes an operator can make in
 * ATTUNE_SITES are refused with a log line that names them, never applied silently.
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { siteByServerKey } from '../admin/auth.ts';
import { getSiteById, getSiteByWriteKey, isOriginAllowed } from './index.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

const secrets = JSON.stringify({
  one: { identitySecret: 'secret-1', serverKey: 'sk-1' },
  two: { identitySecret: 'secret-2', serverKey: 'sk-2' },
});

function configured(sites: unknown[], siteSecrets: string = secrets): Env {
  return { ...env, ATTUNE_SITES: JSON.stringify(sites), ATTUNE_SITE_SECRETS: siteSecrets } as unknown as Env;
}

const basic = (key: string) => `Basic ${btoa(`${key}:`)}`;

function logged(spy: { mock: { calls: unknown[][] } }): string {
  return spy.mock.calls.map((call) => String(call[0])).join('\n');
}

describe('site configuration', () => {
  it('a write key given to two sites stays with the first; the second is skipped and logged', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured([
      { id: 'one', writeKey: 'pk_shared' },
      { id: 'two', writeKey: 'pk_shared' },
    ]);
    expect((await getSiteByWriteKey(config, 'pk_shared'))?.id).toBe('one');
    expect(await getSiteById(config, 'two')).toBeUndefined();
    expect(logged(errors)).toContain('site writeKey is already taken by an earlier site; skipped');
  });

  it('a burst below one request falls back to the defaults, with a log line naming it', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured([{ id: 'one', writeKey: 'pk_one', settings: { rateLimit: { ipBurst: 0.5 } } }]);
    const site = await getSiteById(config, 'one');
    expect(site?.settings.rateLimit.ipBurst).toBeGreaterThanOrEqual(1);
    expect(logged(errors)).toContain('settings.rateLimit.ipBurst');
  });

  it('a server key given to two sites stays with the first; the second is skipped and logged', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured(
      [
        { id: 'one', writeKey: 'pk_one' },
        { id: 'two', writeKey: 'pk_two' },
      ],
      JSON.stringify({
        one: { identitySecret: 'secret-1', serverKey: 'sk-same' },
        two: { identitySecret: 'secret-2', serverKey: 'sk-same' },
      }),
    );
    // Server events for site one must never land in site two.
    expect((await siteByServerKey(config, basic('sk-same')))?.id).toBe('one');
    expect(await getSiteById(config, 'two')).toBeUndefined();
    expect(logged(errors)).toContain('site serverKey is already taken by an earlier site; skipped');
  });

  it('a server key equal to a (public) write key is refused, so nobody can send trusted events with it', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured(
      [
        { id: 'one', writeKey: 'pk_one' },
        { id: 'two', writeKey: 'pk_two' },
      ],
      JSON.stringify({
        one: { identitySecret: 'secret-1', serverKey: 'pk_two' },
        two: { identitySecret: 'secret-2', serverKey: 'sk-2' },
      }),
    );
    expect(await siteByServerKey(config, basic('pk_two'))).toBeUndefined();
    expect(await getSiteById(config, 'one')).toBeUndefined();
    expect((await getSiteById(config, 'two'))?.serverKey).toBe('sk-2');
    expect(logged(errors)).toContain('site serverKey equals a write key, which is public; skipped');
  });

  it('allowed origins match the Origin header browsers send, however the operator wrote them', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = configured([
      {
        id: 'one',
        writeKey: 'pk_one',
        allowedOrigins: [
          'https://shop.example/',
          'HTTPS://WWW.Shop.Example:443',
          'https://app.example/checkout',
        ],
      },
    ]);
    const site = await getSiteById(config, 'one');
    if (!site) throw new Error('site one was skipped');
    expect(isOriginAllowed(site, 'https://shop.example')).toBe(true);
    expect(isOriginAllowed(site, 'https://www.shop.example')).toBe(true);
    expect(isOriginAllowed(site, 'https://app.example')).toBe(true);
    expect(isOriginAllowed(site, 'https://evil.example')).toBe(false);
    // Only the entry with a path is worth a word: the others were plainly meant as written.
    expect(logged(errors)).toContain(
      'entry https://app.example/checkout is not an origin; https://app.example is used',
    );
    expect(logged(errors)).not.toContain('shop.example');
  });
});
