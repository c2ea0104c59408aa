// A site taking browser-bound signatures (settings.identity.signatures: "bound"), in workerd:
// a signature names its person only on the browser it was made for, so one made for another
// browser (an attacker's own, or one copied out of a page or a log) signs in no browser it was
// not made for, and the site's older forms sign none in; the owner's sign-in with a signature
// covering their browser links it. What this does not stop (the site's backend signing an
// account for a browser id its holder reports) is in the README's Security section.
import { env as workerEnv } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { signUserIdForBrowser, signUserIdUntil } from '../identity/index.ts';
import { viewProfile } from '../profile/client.ts';
import {
  anonId,
  collect,
  envWithSites,
  IDENTITY_SECRET,
  makeEvent,
  ORIGIN,
  productView,
  SITE,
  WRITE_KEY,
} from './test-support.ts';

const env = (): Env => workerEnv;
const boundSite = () =>
  envWithSites([
    {
      id: SITE,
      writeKey: WRITE_KEY,
      allowedOrigins: [ORIGIN],
      settings: { identity: { signatures: 'bound' } },
    },
  ]);
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const signFor = (userId: string, anonymousId: string) =>
  signUserIdForBrowser(IDENTITY_SECRET, userId, anonymousId, inAnHour());
/** `userId` signs in on `browser`, with a signature made for that browser. */
const signIn = async (userId: string, browser: string) =>
  collect(
    [makeEvent(browser, 'user.signed_in', { userId, userIdSignature: await signFor(userId, browser) })],
    {
      env: boundSite(),
    },
  );
/** A collect 400: no event of the request was taken, each one's errors listed. */
type Refusal = { error: { code: string; errors: { path: string; message: string }[] } };

describe('a site taking browser-bound signatures', () => {
  it("refuses an account's signature naming another browser: the victim's history stays theirs, and their own sign-in links it", async () => {
    const victimBrowser = anonId('victim');
    const attackerBrowser = anonId('attacker');
    const attacker = `u-${anonId()}`;
    const victim = `u-${anonId()}`;
    // The victim browses signed out: the attacker learns the anonymousId (a shared link, a log).
    expect((await collect([productView(victimBrowser, 'p1', 'lingerie')], { env: boundSite() })).status).toBe(
      200,
    );

    const attack = await collect(
      [
        // The attacker's own, correctly made bound signature, sent naming the victim's browser.
        makeEvent(victimBrowser, 'user.signed_in', {
          userId: attacker,
          userIdSignature: await signFor(attacker, attackerBrowser),
        }),
        // An unbound expiring signature for the attacker's account (the form before the move).
        makeEvent(victimBrowser, 'user.signed_in', {
          userId: attacker,
          userIdSignature: await signUserIdUntil(IDENTITY_SECRET, attacker, inAnHour()),
        }),
      ],
      { env: boundSite() },
    );
    expect(attack.status).toBe(400);
    const refused = (await attack.json()) as Refusal;
    expect(refused.error.errors.map((e) => e.path)).toEqual([
      'batch[0].userIdSignature',
      'batch[1].userIdSignature',
    ]);
    // What to sign, and that the browser is part of it; never the ids themselves.
    expect(refused.error.errors[0]?.message).toMatch(
      /does not match userId and this event's anonymousId; expected "<expiry>\.<hex>": the HMAC-SHA256 of "<expiry>\.<userId>\.<SHA-256 hex of anonymousId>".*this site takes browser-bound signatures only/,
    );
    expect(JSON.stringify(refused)).not.toContain(victimBrowser);
    expect(JSON.stringify(refused)).not.toContain(attacker);
    // Nothing of the victim's reached the attacker's account; the browser is still no one's.
    expect(await viewProfile(env(), SITE, `user:${attacker}`)).toBeNull();
    expect((await viewProfile(env(), SITE, `anon:${victimBrowser}`))?.personKey).toBe(
      `anon:${victimBrowser}`,
    );

    // The attacker signing in on their own browser is a sign-in like any other.
    const own = await signIn(attacker, attackerBrowser);
    expect(await own.json()).toMatchObject({ accepted: 1, rejected: [] });
    expect((await viewProfile(env(), SITE, `user:${attacker}`))?.anonymousIds).toEqual([attackerBrowser]);

    // The victim's own sign-in, signed for their browser, links it and takes its history.
    const victimSignIn = await signIn(victim, victimBrowser);
    expect(await victimSignIn.json()).toMatchObject({ accepted: 1, rejected: [] });
    const person = await viewProfile(env(), SITE, `user:${victim}`);
    expect(person?.anonymousIds).toContain(victimBrowser);
    expect(person?.interests['category:lingerie']).toBeCloseTo(1, 3);
    expect((await viewProfile(env(), SITE, `anon:${victimBrowser}`))?.personKey).toBe(`user:${victim}`);
  });

  it('a user id without a signature is told what to sign, the browser included', async () => {
    const res = await collect([makeEvent(anonId(), 'user.signed_in', { userId: `u-${anonId()}` })], {
      env: boundSite(),
    });
    expect(res.status).toBe(400);
    const [error] = ((await res.json()) as Refusal).error.errors;
    expect(error?.path).toBe('batch[0].userId');
    expect(error?.message).toMatch(
      /userId needs userIdSignature: "<expiry>\.<hex>": the HMAC-SHA256 of "<expiry>\.<userId>\.<SHA-256 hex of anonymousId>"/,
    );
  });
});
