import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import {
  type ConsentConfig,
  DEFAULT_CONSENT_CONFIG,
  isGranted,
  normalizeConsent,
} from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../app.ts';
import { WRITE_KEY } from '../ingest/test-support.ts';
import { READ_GIVEN_UP_MS } from '../kv/index.ts';
import {
  CONSENT_CONFIG_VERSION_KEY,
  consentConfigFromRows,
  getConsentConfig,
  invalidateConsentConfig,
  lastConsentConfig,
  MEMO_MS,
  readConsentConfig,
} from './consent-config.ts';

/** The Worker's env pointed at the fixture Directus, with this token (a wrong one fails, a slow one hangs). */
const withFixtureDirectus = (token: string) =>
  ({ ...env, DIRECTUS_URL: 'http://directus.fixture.test/', DIRECTUS_TOKEN: token }) as unknown as Env;

/** Requests that reached the fixture Directus, failed ones included. */
const directusAttempts = async () =>
  (await (await fetch('http://directus.fixture.test/__reads')).json<{ attempts: number }>()).attempts;

/** A site whose configuration this isolate read (policy version `held`) under a fresh generation. */
const holding = async (site: string, bindings: Env) => {
  const generation = await invalidateConsentConfig(env);
  await env.EDGE_CACHE.put(
    `consent-config:${generation}:${site}`,
    JSON.stringify({ ...DEFAULT_CONSENT_CONFIG, policyVersion: 'held' }),
  );
  expect((await getConsentConfig(bindings, site)).policyVersion).toBe('held');
  return generation;
};

// Tests that move the clock (vi.setSystemTime) give it back, whatever happens in them.
afterEach(() => {
  vi.useRealTimers();
});

describe('consent categories from Directus', () => {
  it("never makes a purpose required: a marketer's tick in Directus cannot grant analytics or marketing over a refusal", async () => {
    const rows = DEFAULT_CONSENT_CONFIG.categories.map((c) => ({ ...c, required: true }));
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = await consentConfigFromRows(rows);
    expect(errors).toHaveBeenCalledTimes(3);
    errors.mockRestore();
    // `necessary` gates nothing and stays required; the purposes are the visitor's to choose.
    expect(Object.fromEntries(config.categories.map((c) => [c.key, c.required]))).toEqual({
      necessary: true,
      analytics: false,
      personalization: false,
      marketing: false,
    });
    const refusal = {
      categories: { necessary: true, analytics: false, personalization: false, marketing: false },
      policyVersion: config.policyVersion,
    };
    expect(normalizeConsent(refusal, config).categories).toEqual(refusal.categories);
  });
});

describe('a consent category row that cannot be read', () => {
  it('keeps a purpose offered, in its built-in wording, and says so: a cleared label must not end personalization', async () => {
    const rows = DEFAULT_CONSENT_CONFIG.categories.map((c) =>
      c.key === 'personalization' ? { ...c, label: '' } : c.key === 'marketing' ? { ...c, label: null } : c,
    );
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const config = await consentConfigFromRows([...rows, { key: 'News Letter', label: 'Newsletter' }]);
    const logged = errors.mock.calls.map((call) => String(call[0]));
    errors.mockRestore();
    expect(config.categories.map((c) => [c.key, c.label])).toEqual(
      DEFAULT_CONSENT_CONFIG.categories.map((c) => [c.key, c.label]),
    );
    const granted = normalizeConsent(
      {
        categories: { analytics: true, personalization: true, marketing: true },
        policyVersion: config.policyVersion,
      },
      config,
    );
    expect(isGranted(granted, 'personalization')).toBe(true);
    // Each row is named, with what is wrong; a category of the marketer's own is left out.
    expect(logged).toHaveLength(3);
    expect(logged.join('\n')).toMatch(
      /consent category personalization cannot be read \(label: .*\); its built-in wording stands in/,
    );
    expect(logged.join('\n')).toMatch(/consent category News Letter cannot be read \(key: .*\); left out/);
  });
});

describe('consent copies in KV from before purposes could not be required', () => {
  it('serves them with every purpose optional', async () => {
    const site = 'copy-with-required-analytics';
    const generation = await invalidateConsentConfig(env);
    const old = {
      ...DEFAULT_CONSENT_CONFIG,
      categories: DEFAULT_CONSENT_CONFIG.categories.map((c) =>
        c.key === 'analytics' ? { ...c, required: true } : c,
      ),
    };
    await env.EDGE_CACHE.put(`consent-config:${generation}:${site}`, JSON.stringify(old));
    const served = await getConsentConfig(env, site);
    expect(served.categories.find((c) => c.key === 'analytics')?.required).toBe(false);
    expect(served.categories.find((c) => c.key === 'necessary')?.required).toBe(true);
  });
});

describe('consent configuration when Directus fails', () => {
  it('falls back to the built-ins and remembers the failure instead of retrying per request', async () => {
    const broken = withFixtureDirectus('wrong');
    await invalidateConsentConfig(broken);
    const before = await directusAttempts();
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () => getConsentConfig(broken, 'no-such-cached-site')),
    );
    for (const config of concurrent) expect(config).toEqual(DEFAULT_CONSENT_CONFIG);
    for (let i = 0; i < 5; i++)
      expect(await getConsentConfig(broken, 'no-such-cached-site')).toEqual(DEFAULT_CONSENT_CONFIG);
    // One attempt (a failed one), not one per request.
    expect((await directusAttempts()) - before).toBe(1);
  });

  it('gives up on a Directus that hangs and falls back, instead of holding every request of the site', {
    timeout: 15_000,
  }, async () => {
    const hanging = withFixtureDirectus('slow-directus-token');
    await invalidateConsentConfig(hanging);
    // The fixture answers after 20 s, past this test's timeout: only giving up gets an answer in time.
    expect(await getConsentConfig(hanging, 'hanging-directus-site')).toEqual(DEFAULT_CONSENT_CONFIG);
  });

  describe('refreshing while serving', () => {
    it('reads ahead halfway through its memory: served at once while the read waits on a hung Directus', {
      timeout: 15_000,
    }, async () => {
      const site = 'read-ahead';
      const hanging = withFixtureDirectus('slow-directus-token');
      const generation = await holding(site, hanging);
      // Another isolate's invalidation: only KV changes, so the read must ask Directus, which hangs.
      await env.EDGE_CACHE.put(CONSENT_CONFIG_VERSION_KEY, `${generation}-elsewhere`);
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + MEMO_MS / 2 + 1);

      const kept: Promise<unknown>[] = [];
      // Before, every request of the site waited for that read (up to 5 s) once its memory was 30 s old.
      expect((await getConsentConfig(hanging, site, (p) => kept.push(p))).policyVersion).toBe('held');
      expect(kept).toHaveLength(1);
      // Requests that come while it runs neither wait for it nor start another.
      expect((await getConsentConfig(hanging, site, (p) => kept.push(p))).policyVersion).toBe('held');
      expect(kept).toHaveLength(1);
      vi.useRealTimers();
      // Once the read gives up, the held configuration (replaced elsewhere) no longer stands in.
      await expect(kept[0]).resolves.toEqual(DEFAULT_CONSENT_CONFIG);
      expect(await getConsentConfig(hanging, site)).toEqual(DEFAULT_CONSENT_CONFIG);
    });

    it('waits for the read once its memory is stale: an isolate idle for an hour never serves what another isolate replaced', async () => {
      const site = 'idle-isolate';
      const generation = await holding(site, env);
      const replaced = `${generation}-elsewhere`;
      await env.EDGE_CACHE.put(
        `consent-config:${replaced}:${site}`,
        JSON.stringify({ ...DEFAULT_CONSENT_CONFIG, policyVersion: 'new' }),
      );
      await env.EDGE_CACHE.put(CONSENT_CONFIG_VERSION_KEY, replaced);
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 60 * 60 * 1000);
      expect((await getConsentConfig(env, site, () => {})).policyVersion).toBe('new');
    });

    it('waits for the retry after a quick failure with nothing of the site known: a recovered Directus is seen at once', async () => {
      const site = 'after-the-outage';
      await env.EDGE_CACHE.delete(`consent-config:last-good:${site}`);
      const generation = await invalidateConsentConfig(env);
      expect(await readConsentConfig(withFixtureDirectus('wrong'), site, () => {})).toEqual({ ok: false });
      // Directus is back (here: another isolate has read it into KV).
      await env.EDGE_CACHE.put(
        `consent-config:${generation}:${site}`,
        JSON.stringify({ ...DEFAULT_CONSENT_CONFIG, policyVersion: 'site' }),
      );
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 5_001);
      const read = await readConsentConfig(env, site, () => {});
      expect(read.ok && read.config.policyVersion).toBe('site');
    });
  });

  describe('with nothing of the site known while Directus hangs', () => {
    it('serves the outage answer while the retry runs, instead of every request waiting for it', {
      timeout: 20_000,
    }, async () => {
      const site = 'hung-nothing-known';
      const hanging = withFixtureDirectus('slow-directus-token');
      await env.EDGE_CACHE.delete(`consent-config:last-good:${site}`);
      await invalidateConsentConfig(env);
      // The first request waits for the read, which gives up after 5 s.
      expect(await readConsentConfig(hanging, site, () => {})).toEqual({ ok: false });
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 5_001);
      const kept: Promise<unknown>[] = [];
      // The retry is due: it starts, and this request is answered without waiting for it.
      // (Before, the retry was due 5 s after the first read began, so already when that read
      // gave up, and each request waited for a read of its own, 5 s at a time.)
      const answer = await Promise.race([
        readConsentConfig(hanging, site, (p) => kept.push(p)),
        new Promise((resolve) => setTimeout(() => resolve('waited for the hung read'), 1_000)),
      ]);
      expect(answer).toEqual({ ok: false });
      expect(kept).toHaveLength(1);
      vi.useRealTimers();
      await kept[0];
    });
  });

  describe('when KV fails too', () => {
    /** `bindings` with a KV that fails (`get`, `put` or both), or whose reads never answer. */
    const withKv = (bindings: Env, kv: { get?: 'fails' | 'hangs'; put?: 'fails once' }): Env => {
      let putFailures = kv.put === 'fails once' ? 1 : 0;
      const cache = {
        get: (key: string, type?: 'json') =>
          kv.get === 'fails'
            ? Promise.reject(new Error('KV unavailable'))
            : kv.get === 'hangs'
              ? new Promise(() => {})
              : type === 'json'
                ? env.EDGE_CACHE.get(key, 'json')
                : env.EDGE_CACHE.get(key),
        put: (...args: Parameters<KVNamespace['put']>) => {
          if (putFailures > 0) {
            putFailures--;
            return Promise.reject(new Error('KV PUT failed: 429 Too Many Requests'));
          }
          return env.EDGE_CACHE.put(...args);
        },
      };
      return { ...bindings, EDGE_CACHE: cache } as unknown as Env;
    };

    it('serves what the isolate holds while Directus hangs as well, without requests waiting', {
      timeout: 20_000,
    }, async () => {
      const site = 'kv-and-directus-down';
      await holding(site, env);
      const down = withKv(withFixtureDirectus('slow-directus-token'), { get: 'fails' });
      vi.useFakeTimers({ toFake: ['Date'] });
      const start = Date.now();
      for (const at of [MEMO_MS / 2 + 1, MEMO_MS + 1]) {
        vi.setSystemTime(start + at);
        const kept: Promise<unknown>[] = [];
        const answer = await Promise.race([
          readConsentConfig(down, site, (p) => kept.push(p)),
          new Promise((resolve) => setTimeout(() => resolve('waited for the hung read'), 1_000)),
        ]);
        // (Before, once the memory's 30 s were up, requests waited for each read, 5 s at a time.)
        expect(answer).toEqual({ ok: true, config: expect.objectContaining({ policyVersion: 'held' }) });
        await Promise.all(kept);
      }
    });

    it('starts a new read instead of waiting for good on one that never settles', async () => {
      const site = 'read-never-settles';
      await invalidateConsentConfig(env);
      const kept: Promise<unknown>[] = [];
      // A read whose KV call never answers (or that the runtime cancelled with its request).
      void readConsentConfig(withKv(env, { get: 'hangs' }), site, (p) => kept.push(p));
      await env.EDGE_CACHE.put(
        `consent-config:${await env.EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY)}:${site}`,
        JSON.stringify({ ...DEFAULT_CONSENT_CONFIG, policyVersion: 'site' }),
      );
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 20_001);
      const answer = await Promise.race([
        readConsentConfig(env, site, (p) => kept.push(p)),
        new Promise((resolve) => setTimeout(() => resolve('waited on the stuck read'), 1_000)),
      ]);
      expect(answer).toEqual({ ok: true, config: expect.objectContaining({ policyVersion: 'site' }) });
      expect(kept).toHaveLength(2);
    });

    it('releases the requests waiting on a read that never settles once it is given up', async () => {
      const site = 'waiters-on-a-stuck-read';
      await invalidateConsentConfig(env);
      vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
      let answer: unknown = 'still waiting';
      void readConsentConfig(withKv(env, { get: 'hangs' }), site, () => undefined).then((read) => {
        answer = read;
      });
      await vi.advanceTimersByTimeAsync(READ_GIVEN_UP_MS - 1);
      expect(answer).toBe('still waiting');
      // Given up: the request goes on as when Directus is unreachable (the built-ins, which
      // grant nothing by default), instead of waiting until the runtime cancels it.
      await vi.advanceTimersByTimeAsync(1);
      expect(answer).toEqual({ ok: false });
    });

    it('an invalidation whose KV write is refused once (two changes within a second) still lands', async () => {
      const site = 'invalidated-twice-quickly';
      await holding(site, env);
      const generation = await invalidateConsentConfig(withKv(env, { put: 'fails once' }));
      expect(await env.EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY)).toBe(generation);
      expect(lastConsentConfig(site)).toBeUndefined();
    });
  });

  it('gives a decision no configuration that is stale: an isolate idle for an hour grants nothing', async () => {
    const site = 'stale-for-decisions';
    const generation = await invalidateConsentConfig(env);
    await env.EDGE_CACHE.put(
      `consent-config:${generation}:${site}`,
      JSON.stringify({ ...DEFAULT_CONSENT_CONFIG, policyVersion: 'held' }),
    );
    await getConsentConfig(env, site);
    expect(lastConsentConfig(site)?.policyVersion).toBe('held');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 60 * 60 * 1000);
      expect(lastConsentConfig(site)).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('hands the read that concurrent requests share to the waitUntil of the request that started it', async () => {
    const broken = withFixtureDirectus('wrong');
    await invalidateConsentConfig(broken);
    const kept: Promise<unknown>[] = [];
    const keepAlive = (promise: Promise<unknown>) => kept.push(promise);
    await Promise.all(
      Array.from({ length: 3 }, () => getConsentConfig(broken, 'shared-read-site', keepAlive)),
    );
    // One read, kept alive by the request that started it: if that request's client went
    // away, the others would otherwise wait on a read workerd had cancelled.
    expect(kept).toHaveLength(1);
    await expect(kept[0]).resolves.toEqual(DEFAULT_CONSENT_CONFIG);
  });

  it('does not let a read that began before an invalidation install the configuration it read', async () => {
    const site = 'invalidated-while-reading';
    const cachedAs = (generation: string, policyVersion: string) =>
      env.EDGE_CACHE.put(
        `consent-config:${generation}:${site}`,
        JSON.stringify({ ...DEFAULT_CONSENT_CONFIG, policyVersion }),
      );
    await cachedAs(await invalidateConsentConfig(env), 'before-the-change');
    const reading = getConsentConfig(env, site, () => {});
    // A marketer's change lands while that read runs.
    await cachedAs(await invalidateConsentConfig(env), 'after-the-change');
    await reading;
    expect((await getConsentConfig(env, site)).policyVersion).toBe('after-the-change');
  });
});

describe('GET /v1/config when the site’s configuration cannot be read', () => {
  /** The tag's config request, answered by the Worker with `bindings`. */
  const config = async (bindings: Env, headers: Record<string, string> = {}) => {
    const ctx = createExecutionContext();
    const res = await createApp().fetch(
      new Request(`http://127.0.0.1:8787/v1/config?writeKey=${WRITE_KEY}`, { headers }),
      bindings,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return res;
  };
  const forgetLastGood = () => env.EDGE_CACHE.delete('consent-config:last-good:demo');

  it('answers 503 with Retry-After, not cached, instead of the built-in policy version', async () => {
    await forgetLastGood();
    await invalidateConsentConfig(env);
    const res = await config(withFixtureDirectus('wrong'));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const body = await res.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe('config_unavailable');
    expect(body.error.message).toContain('could not be read');
    // The ingest, decisions and the profile still get the built-ins, as before.
    expect(await getConsentConfig(withFixtureDirectus('wrong'), 'demo')).toEqual(DEFAULT_CONSENT_CONFIG);
  });

  it('serves the built-ins for a site that defines no categories of its own, revalidated on every read', async () => {
    await forgetLastGood();
    await invalidateConsentConfig(env);
    const res = await config(withFixtureDirectus('no-categories-directus-token'));
    expect(res.status).toBe(200);
    // A browser may keep it but must ask before using it: a marketer's change applies at once.
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('etag')).toBe(`"${DEFAULT_CONSENT_CONFIG.policyVersion}"`);
    expect(await res.json()).toEqual(DEFAULT_CONSENT_CONFIG);
    const unchanged = await config(withFixtureDirectus('no-categories-directus-token'), {
      'if-none-match': `"${DEFAULT_CONSENT_CONFIG.policyVersion}"`,
    });
    expect(unchanged.status).toBe(304);
    expect(unchanged.headers.get('access-control-allow-origin')).toBe('*');
    const changed = await config(withFixtureDirectus('no-categories-directus-token'), {
      'if-none-match': '"1.0123456789ab"',
    });
    expect(changed.status).toBe(200);
  });

  it('takes a last good copy kept before copies carried their generation while nothing was ever invalidated', async () => {
    // A fresh deployment's KV: no generation yet ('0'), and the copy an earlier version wrote
    // (this isolate's memory cleared as a new isolate's is).
    await invalidateConsentConfig(env);
    await env.EDGE_CACHE.delete(CONSENT_CONFIG_VERSION_KEY);
    await env.EDGE_CACHE.delete('consent-config:0:demo');
    const sites = { ...DEFAULT_CONSENT_CONFIG, policyVersion: 'site-v7' };
    await env.EDGE_CACHE.put('consent-config:last-good:demo', JSON.stringify(sites));
    const during = await config(withFixtureDirectus('wrong'));
    expect(during.status).toBe(200);
    expect(await during.json()).toEqual(sites);
  });

  it('serves the last configuration read from Directus during an outage, not one an invalidation has replaced', async () => {
    await forgetLastGood();
    await invalidateConsentConfig(env);
    const good = await config(withFixtureDirectus('own-categories-directus-token'));
    expect(good.status).toBe(200);
    const sites = await good.json<ConsentConfig>();
    expect(sites.policyVersion).not.toBe(DEFAULT_CONSENT_CONFIG.policyVersion);
    // A marketer's change (say marketing disabled) invalidates every copy; then Directus goes
    // down before it is read again: the copy from before the change is not the policy in force.
    await invalidateConsentConfig(env);
    const during = await config(withFixtureDirectus('wrong'));
    expect(during.status).toBe(503);
    // Read since the last invalidation (by another isolate, whose copy this one finds in KV:
    // its own per-generation copy expired), the last good copy stands in during an outage.
    const generation = await invalidateConsentConfig(env);
    await env.EDGE_CACHE.put('consent-config:last-good:demo', JSON.stringify({ generation, config: sites }));
    const later = await config(withFixtureDirectus('wrong'));
    expect(later.status).toBe(200);
    expect(await later.json()).toEqual(sites);
  });
});
