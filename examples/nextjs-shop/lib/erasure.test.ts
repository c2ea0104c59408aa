/**
 * The erasure request as the shop's server reads it: the anonymous id comes from the body
 * (the `attune_aid` cookie is often missing), bad bodies are a readable 400, and "done"
 * means the edge held someone and the Worker confirmed every erasure.
 */
import { describe, expect, it } from 'vitest';
import {
  ERASE_BODY_LIMIT,
  eraseAll,
  erasureTargets,
  parseErasureRequest,
  readBodyLimited,
} from './erasure.ts';
import type { ErasureAnswer, PersonLookup, PersonRef } from './people.ts';

const ULID = '01JD8X3Q4Z5R6S7T8V9W0XYZAB';

describe('the erasure request body', () => {
  it('names the anonymous id to erase', () => {
    expect(parseErasureRequest(JSON.stringify({ anonymousId: ULID }))).toEqual({
      ok: true,
      anonymousId: ULID,
    });
  });

  it.each([
    ['missing', '', /empty/],
    ['not JSON', 'anonymousId=1', /not JSON/],
    ['not an object', '["x"]', /not a JSON object/],
    ['null', 'null', /not a JSON object/],
    ['without the id', '{}', /anonymousId is missing/],
    ['an id that is not a string', '{"anonymousId": 42}', /anonymousId: expected/],
    ['an id with a slash', '{"anonymousId": "../people"}', /anonymousId: expected/],
    ['an id too long', JSON.stringify({ anonymousId: 'a'.repeat(129) }), /anonymousId: expected/],
    ['over the size limit', undefined, /over 1024 bytes/],
  ])('a body %s is refused with what to send', (_, body, reason) => {
    const r = parseErasureRequest(body);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.message).toMatch(reason);
      expect(r.message).toMatch(/anonymousId/);
    }
  });

  it('reads at most the limit', async () => {
    const big = new Request('http://shop/api/erase', {
      method: 'POST',
      body: 'x'.repeat(ERASE_BODY_LIMIT + 1),
    });
    expect(await readBodyLimited(big)).toBeUndefined();
    const small = new Request('http://shop/api/erase', { method: 'POST', body: `{"anonymousId":"${ULID}"}` });
    expect(await readBodyLimited(small)).toBe(`{"anonymousId":"${ULID}"}`);
    expect(await readBodyLimited(new Request('http://shop/api/erase', { method: 'POST' }))).toBe('');
  });
});

describe('whom an erasure request erases', () => {
  it('the anonymous id the browser names, with no attune_aid cookie (marketing only, withdrawn consent, or straight to the shop)', () => {
    expect(erasureTargets({ userId: undefined, anonymousId: ULID, cookieAnonymousId: undefined })).toEqual([
      { kind: 'anon', id: ULID },
    ]);
  });

  it('the signed-in person first, then the named id, then an older id in the cookie', () => {
    expect(erasureTargets({ userId: 'user_ada', anonymousId: ULID, cookieAnonymousId: 'older-id' })).toEqual([
      { kind: 'user', id: 'user_ada' },
      { kind: 'anon', id: ULID },
      { kind: 'anon', id: 'older-id' },
    ]);
  });

  it('the cookie’s id once when it is the named id, and never a malformed one', () => {
    expect(erasureTargets({ userId: undefined, anonymousId: ULID, cookieAnonymousId: ULID })).toHaveLength(1);
    expect(erasureTargets({ userId: undefined, anonymousId: ULID, cookieAnonymousId: 'a/b' })).toHaveLength(
      1,
    );
  });
});

describe('the shop’s answer', () => {
  const targets: PersonRef[] = [
    { kind: 'user', id: 'user_ada' },
    { kind: 'anon', id: ULID },
  ];
  const held: PersonLookup = { ok: true, held: true, ownerUserId: undefined };
  const worker = (
    answers: ErasureAnswer[],
    lookUp: (p: PersonRef) => Promise<PersonLookup> = async () => held,
  ) => ({
    lookUp,
    erase: async () => answers.shift() ?? { ok: true as const },
  });

  it('lists what the Worker erased, with the erasures’ ids as references', async () => {
    const ids = ['01JD8X3Q4Z5R6S7T8V9W0XYZ01', '01JD8X3Q4Z5R6S7T8V9W0XYZ02'];
    const answers: ErasureAnswer[] = ids.map((erasureId) => ({ ok: true, erasureId }));
    expect(await eraseAll(targets, 'user_ada', worker(answers))).toEqual({
      status: 200,
      body: { erased: ['user', 'anon'], references: ids },
    });
  });

  it('lists no one, and erases no one, when the edge holds none of them', async () => {
    const erase = async (): Promise<ErasureAnswer> => {
      throw new Error('must not erase');
    };
    const out = await eraseAll(targets, 'user_ada', {
      lookUp: async () => ({ ok: true, held: false }),
      erase,
    });
    expect(out).toEqual({ status: 200, body: { erased: [], references: [] } });
  });

  it('is a failure, not "done", when the Worker refuses one of them', async () => {
    const out = await eraseAll(
      targets,
      'user_ada',
      worker([{ ok: true }, { ok: false, retryable: false, status: 400 }]),
    );
    expect(out.status).toBe(502);
  });

  it('asks to try again when the Worker could not queue the erasure for Directus (503)', async () => {
    const out = await eraseAll(targets, 'user_ada', worker([{ ok: false, retryable: true, status: 503 }]));
    expect(out).toMatchObject({ status: 503, retryAfter: '5' });
  });

  it('is a failure when the Worker cannot be reached', async () => {
    const unreachable = async (): Promise<never> => {
      throw new TypeError('fetch failed');
    };
    expect((await eraseAll(targets, 'user_ada', { lookUp: unreachable, erase: unreachable })).status).toBe(
      502,
    );
    expect(
      (await eraseAll(targets, 'user_ada', { lookUp: async () => held, erase: unreachable })).status,
    ).toBe(502);
  });
});
