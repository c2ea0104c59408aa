/**
 * Which secrets bootstrap gives Directus and writes for the Worker (secrets.mjs), without a
 * Directus: `npm test` in services/directus (node:test: this npm project has no test runner of
 * its own to install).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseSecret,
  chooseServerKey,
  MIN_SECRET_CHARS,
  newServerKey,
  usableSecret,
  workerSiteSecrets,
} from './secrets.mjs';

const generated = 'sk_generated_for_the_test_0000';
const generate = () => generated;
const realKey = 'sk_a_real_server_key_000000';

describe('chooseServerKey', () => {
  it('with nothing configured anywhere, is a new random key the Worker takes, not a placeholder', () => {
    const key = chooseServerKey({ siteSecrets: {}, siteId: 'demo' });
    assert.ok(key.length >= MIN_SECRET_CHARS, key);
    assert.match(key, /^sk_[A-Za-z0-9_-]{32}$/);
    assert.notEqual(key, 'sk_change_me');
    assert.notEqual(chooseServerKey({ siteSecrets: {}, siteId: 'demo' }), key);
  });

  it('takes ATTUNE_SERVER_KEY first, as it is', () => {
    const siteSecrets = { demo: { serverKey: realKey } };
    assert.equal(
      chooseServerKey({
        explicit: 'sk_from_the_env_0000',
        siteSecrets,
        siteId: 'demo',
        previous: realKey,
        generate,
      }),
      'sk_from_the_env_0000',
    );
    // Asked for: used, and the Worker logs why it refuses it.
    assert.equal(chooseServerKey({ explicit: 'short', siteSecrets, siteId: 'demo', generate }), 'short');
  });

  it("then the site's serverKey in .dev.vars, then the earlier run's key", () => {
    const previous = 'sk_kept_by_an_earlier_run_00';
    assert.equal(
      chooseServerKey({ siteSecrets: { demo: { serverKey: realKey } }, siteId: 'demo', previous, generate }),
      realKey,
    );
    assert.equal(chooseServerKey({ siteSecrets: {}, siteId: 'demo', previous, generate }), previous);
    assert.equal(
      chooseServerKey({ explicit: '', siteSecrets: {}, siteId: 'demo', previous, generate }),
      previous,
    );
  });

  it("never takes the example file's placeholder, from .dev.vars or from an earlier run", () => {
    const siteSecrets = { demo: { identitySecret: 'change-me', serverKey: 'sk_change_me' } };
    assert.equal(
      chooseServerKey({ siteSecrets, siteId: 'demo', previous: 'sk_change_me', generate }),
      generated,
    );
  });

  it("reads the Flow's own site, not demo's", () => {
    const siteSecrets = { demo: { serverKey: realKey }, shop: { serverKey: 'sk_the_shop_site_key_00' } };
    assert.equal(chooseServerKey({ siteSecrets, siteId: 'shop', generate }), 'sk_the_shop_site_key_00');
    assert.equal(
      chooseServerKey({ siteSecrets: { demo: { serverKey: realKey } }, siteId: 'shop', generate }),
      generated,
    );
  });

  it('survives site secrets that are not the expected shape', () => {
    for (const siteSecrets of [null, [], 'text', { demo: null }, { demo: { serverKey: 42 } }]) {
      assert.equal(chooseServerKey({ siteSecrets, siteId: 'demo', generate }), generated);
    }
  });
});

describe('chooseSecret', () => {
  it('skips values the Worker refuses (under 16 characters) for the next one, else generates', () => {
    assert.equal(
      chooseSecret({ candidates: ['change-me', 'a-hook-secret-16', 'other'], generate }),
      'a-hook-secret-16',
    );
    assert.equal(chooseSecret({ candidates: ['change-me', undefined], generate }), generated);
  });
});

describe('usableSecret', () => {
  it('is 16 characters or more', () => {
    assert.equal(usableSecret('x'.repeat(15)), false);
    assert.equal(usableSecret('x'.repeat(16)), true);
    assert.equal(usableSecret(undefined), false);
  });
});

describe('newServerKey', () => {
  it('is what ./attune up writes: sk_ and 24 random bytes', () => {
    assert.match(newServerKey(), /^sk_[A-Za-z0-9_-]{32}$/);
  });
});

describe('workerSiteSecrets', () => {
  it("sets the site's server key and keeps every other secret", () => {
    const siteSecrets = {
      demo: {
        identitySecret: 'id-secret-of-demo-0000',
        serverKey: 'sk_change_me',
        privacyToken: 'pt-0000000000000000',
      },
      other: { identitySecret: 'id-secret-of-other-000', serverKey: 'sk_other_site_key_0000' },
    };
    assert.deepEqual(workerSiteSecrets({ siteSecrets, siteId: 'demo', serverKey: realKey }), {
      demo: {
        identitySecret: 'id-secret-of-demo-0000',
        serverKey: realKey,
        privacyToken: 'pt-0000000000000000',
      },
      other: siteSecrets.other,
    });
    assert.equal(siteSecrets.demo.serverKey, 'sk_change_me', 'the input is not changed');
  });

  it('gives a site without secrets an empty identity secret, so the Worker does not skip it', () => {
    assert.deepEqual(workerSiteSecrets({ siteSecrets: {}, siteId: 'demo', serverKey: realKey }), {
      demo: { identitySecret: '', serverKey: realKey },
    });
    assert.deepEqual(workerSiteSecrets({ siteSecrets: 'not json', siteId: 'demo', serverKey: realKey }), {
      demo: { identitySecret: '', serverKey: realKey },
    });
  });
});
