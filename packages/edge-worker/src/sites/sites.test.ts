/**
 * The site directory built from configuration: mistakes an operator can make in
 * ATTUNE_SITES are refused with a log line that names them, never applied silently.
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { getSiteById, getSiteByWriteKey } from './index.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

const secrets = JSON.stringify({
  one: { identitySecret: 'secret-1', serverKey: 'sk-1' },
  two: { identitySecret: 'secret-2', serverKey: 'sk-2' },
});

function configured(sites: unknown[]): Env {
  return { ...env, ATTUNE_SITES: JSON.stringify(sites), ATTUNE_SITE_SECRETS: secrets } as unknown as Env;
}

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
});
