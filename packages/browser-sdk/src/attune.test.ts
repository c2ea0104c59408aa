/**
 * The tracker's rules with the browser faked (pure logic: a recording store and a
 * scripted fetch). The same rules run in real Chromium in test/browser.test.ts.
 */
import { parseCollectBody } from '@attune/shared-schema';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AttuneError, type AttuneOptions, createAttune } from './attune.ts';
import { emptyStorageLog, recordingPersistence, type StorageLog } from './store/recording-persistence.ts';
import type { VisitorRecord } from './store/store.ts';

interface Sent {
  url: string;
  names: string[];
  events: Record<string, unknown>[];
}

let storage: StorageLog;
let sent: Sent[];
/** The Worker's next answers to /v1/collect: a status (with the body the Worker sends with it), or a status and body. */
let answers: (number | 'no answer' | { status: number; body: unknown })[];

const ids = () => sent.flatMap((s) => s.events.map((e) => e.id));
const names = () => sent.flatMap((s) => s.names);
const settle = () => vi.advanceTimersByTimeAsync(0);

function tracker(options: Partial<AttuneOptions> = {}, initial?: VisitorRecord) {
  return createAttune(
    { endpoint: 'https://edge.test/', writeKey: 'pk_test', autoPageView: false, ...options },
    recordingPersistence(storage, initial),
  );
}

beforeEach(() => {
  sent = [];
  answers = [];
  storage = emptyStorageLog();
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(Date.parse('2026-11-26T10:00:00Z'));
  const target = new EventTarget();
  vi.stubGlobal('addEventListener', target.addEventListener.bind(target));
  vi.stubGlobal('document', { referrer: '', title: 'Shop', hidden: false, addEventListener: () => {} });
  vi.stubGlobal('location', {
    href: 'https://shop.test/p/1?utm_source=news',
    pathname: '/p/1',
    search: '?utm_source=news',
  });
  vi.stubGlobal('screen', { width: 1280, height: 800 });
  vi.stubGlobal('devicePixelRatio', 2);
  vi.stubGlobal('navigator', { onLine: true, language: 'en-GB' });
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      if (!url.endsWith('/v1/collect')) return new Response('{}', { status: 404 });
      const body = String(init?.body);
      const parsed = parseCollectBody(body);
      if (!parsed.ok) throw new Error(`invalid collect body: ${JSON.stringify(parsed.body)}`);
      expect(parsed.rejected).toEqual([]);
      const events = (JSON.parse(body) as { batch: Record<string, unknown>[] }).batch;
      sent.push({ url, names: events.map((e) => String(e.name)), events });
      const answer = answers.shift() ?? 200;
      if (answer === 'no answer') throw new TypeError('Failed to fetch');
      const status = typeof answer === 'number' ? answer : answer.status;
      const answered =
        typeof answer !== 'number'
          ? answer.body
          : status < 300
            ? { accepted: events.length, rejected: [] }
            : { error: { code: 'invalid_json', message: 'request body could not be read' } };
      return new Response(JSON.stringify(answered), { status });
    }),
  );
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('before any consent choice', () => {
  it('sends nothing and writes nothing, however long it waits', async () => {
    const attune = tracker({ autoPageView: true });
    attune.track('product.viewed', { productId: 'p1' });
    attune.identify('u1', { plan: 'pro' }, { signature: 'a'.repeat(64) });
    await attune.flush();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fetch).not.toHaveBeenCalled();
    expect(storage.writes).toEqual([]);
    expect(attune.consent.get()).toMatchObject({
      decided: false,
      categories: { necessary: true, analytics: false },
    });
  });

  it('holds a bounded number of events (the oldest go first)', async () => {
    const attune = tracker({ maxWaiting: 3 });
    for (let i = 0; i < 5; i++) attune.track('item.seen', { i });
    attune.consent.set({ analytics: true });
    await attune.flush();
    expect(names()).toEqual(['item.seen', 'item.seen', 'item.seen', 'consent.updated']);
    expect(sent[0]?.events.slice(0, 3).map((e) => (e.properties as { i: number }).i)).toEqual([2, 3, 4]);
  });
});

describe('granting consent', () => {
  it('releases the waiting events, stamped with the consent that allows them, and starts storing', async () => {
    const attune = tracker({ autoPageView: true });
    attune.track('product.viewed', { productId: 'p1' });
    attune.consent.set({ analytics: true }, 'banner');
    await settle();
    expect(storage.writes).toContain('save');
    expect(storage.saved.at(-1)).toMatchObject({
      anonymousId: expect.any(String),
      consent: { categories: { analytics: true } },
    });
    expect([...storage.storedEvents.keys()]).toHaveLength(3);
    await attune.flush();
    // Oldest first: the events that waited, then the choice that released them.
    expect(names()).toEqual(['page.viewed', 'product.viewed', 'consent.updated']);
    const [page, , consent] = sent[0]?.events ?? [];
    expect(consent).toMatchObject({
      type: 'consent',
      properties: { categories: { analytics: true }, policyVersion: '1', source: 'banner' },
    });
    expect(page).toMatchObject({
      type: 'page',
      context: {
        page: { url: 'https://shop.test/p/1?utm_source=news', path: '/p/1', title: 'Shop' },
        consent: { categories: { analytics: true }, policyVersion: '1' },
        locale: 'en-GB',
      },
    });
    // The query and its campaign are in the URL: the Worker reads them from it, not the tag.
    expect(page?.context).not.toHaveProperty('campaign');
    expect(page).not.toHaveProperty('context.page.search');
    // Delivered events leave the store.
    expect(storage.storedEvents.size).toBe(0);
  });

  it('attaches a signed user id to later events and forgets it on reset', async () => {
    const attune = tracker();
    attune.consent.set({ personalization: true });
    attune.identify('u-42', { plan: 'pro' }, { signature: 'b'.repeat(64) });
    attune.track('cart.item.added', { productId: 'p1' });
    attune.reset();
    attune.track('cart.item.added', { productId: 'p2' });
    await attune.flush();
    const [, identify, before, after] = sent.flatMap((batch) => batch.events);
    expect(identify).toMatchObject({
      type: 'identify',
      name: 'user.identified',
      userId: 'u-42',
      traits: { plan: 'pro' },
    });
    expect(before).toMatchObject({ userId: 'u-42', userIdSignature: 'b'.repeat(64) });
    expect(after?.userId).toBeUndefined();
    expect(after?.anonymousId).not.toBe(before?.anonymousId);
  });
});

describe('identify', () => {
  it('starts afresh when another person signs in without a reset in between', async () => {
    const attune = tracker();
    attune.consent.set({ personalization: true });
    attune.identify('u-1', {}, { signature: 'a'.repeat(64) });
    const first = attune.anonymousId();
    attune.identify('u-1', {}, { signature: 'a'.repeat(64) });
    // The same person again keeps the browser's id.
    expect(attune.anonymousId()).toBe(first);
    attune.identify('u-2', {}, { signature: 'b'.repeat(64) });
    attune.track('cart.item.added', { productId: 'p2' });
    await attune.flush();
    const events = sent.flatMap((b) => b.events);
    expect(attune.anonymousId()).not.toBe(first);
    const second = events.filter((e) => e.userId === 'u-2');
    expect(second.map((e) => e.name)).toEqual(['user.identified', 'cart.item.added']);
    expect(second.every((e) => e.anonymousId === attune.anonymousId())).toBe(true);
    expect(events.filter((e) => e.anonymousId === first).every((e) => e.userId !== 'u-2')).toBe(true);
  });

  it('takes a signature in upper-case hex, as .NET and Java print it', async () => {
    const attune = tracker();
    attune.consent.set({ personalization: true });
    await settle();
    attune.identify('u-7', {}, { signature: 'AB'.repeat(32) });
    await attune.flush();
    expect(sent.flatMap((b) => b.events).find((e) => e.name === 'user.identified')).toMatchObject({
      userId: 'u-7',
      userIdSignature: 'AB'.repeat(32),
    });
  });

  it('does not take a user id without a well-formed signature (the Worker would refuse every later event), and reports it', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ personalization: true });
    attune.identify('u-1', {}, { signature: 'not-hex' });
    attune.identify('u-2');
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    for (const event of sent.flatMap((s) => s.events)) {
      expect(event.userId).toBeUndefined();
      expect(event.userIdSignature).toBeUndefined();
    }
    expect(storage.saved.at(-1)?.userId).toBeUndefined();
    expect(errors).toEqual([
      expect.objectContaining({ code: 'invalid_event', message: 'identify needs an id and a signature' }),
      expect.objectContaining({ code: 'invalid_event', message: 'identify needs an id and a signature' }),
    ]);
  });

  it('does not take an empty user id or one over 128 characters, though signed (the Worker would refuse every later event)', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ personalization: true });
    // A backend that signs whatever id it has signs '' for a signed-out visitor.
    attune.identify('', {}, { signature: 'a'.repeat(64) });
    attune.identify('u'.repeat(129), {}, { signature: 'b'.repeat(64) });
    attune.identify('u'.repeat(128), {}, { signature: 'c'.repeat(64) });
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    expect(
      sent
        .flatMap((s) => s.events)
        .map((e) => [e.name, typeof e.userId === 'string' ? e.userId.length : undefined]),
    ).toEqual([
      ['consent.updated', undefined],
      ['user.identified', 128],
      ['product.viewed', 128],
    ]);
    expect(errors.map((e) => e.message)).toEqual([
      'identify needs an id and a signature',
      'identify needs an id and a signature',
    ]);
  });

  it('reports odd arguments through onError instead of throwing them into the page, and changes nothing for them', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    attune.identify('u-1', {}, null as unknown as { signature: string });
    attune.consent.set(null as unknown as Record<string, boolean>);
    attune.track(Symbol('name') as unknown as string);
    attune.page({
      get title(): string {
        throw new Error('title not ready');
      },
    });
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    expect(names()).toEqual(['consent.updated', 'product.viewed']);
    expect(attune.consent.get().categories.analytics).toBe(true);
    expect(errors.map(({ code, message }) => [code, message.replace(/'.*'/, "'…'")])).toEqual([
      ['invalid_event', "TypeError: Cannot destructure property '…' as it is null."],
      ['invalid_event', "TypeError: Cannot read properties of null (reading '…')"],
      ['invalid_event', 'TypeError: Cannot convert a Symbol value to a string'],
      ['invalid_event', 'Error: title not ready'],
    ]);
  });

  it('takes an expiring signature (<expiry>.<hex>), and a fresh one from a later identify replaces it', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ personalization: true });
    attune.identify('u-1', {}, { signature: `1767225600.${'a'.repeat(64)}` });
    attune.track('product.viewed', { productId: 'p1' });
    // The next page signs again with a later expiry.
    attune.identify('u-1', {}, { signature: `1767312000.${'B'.repeat(64)}` });
    attune.track('product.viewed', { productId: 'p2' });
    // Not the expiring form: a dot without a time, a time without a dot, a time in
    // milliseconds (13 digits: the Worker would refuse every later event).
    attune.identify('u-1', {}, { signature: `.${'a'.repeat(64)}` });
    attune.identify('u-1', {}, { signature: `1767312000${'a'.repeat(64)}` });
    attune.identify('u-1', {}, { signature: `1767312000000.${'a'.repeat(64)}` });
    await attune.flush();
    const events = sent.flatMap((s) => s.events);
    expect(events.map((e) => [e.name, e.userIdSignature])).toEqual([
      ['consent.updated', undefined],
      ['user.identified', `1767225600.${'a'.repeat(64)}`],
      ['product.viewed', `1767225600.${'a'.repeat(64)}`],
      ['user.identified', `1767312000.${'B'.repeat(64)}`],
      ['product.viewed', `1767312000.${'B'.repeat(64)}`],
    ]);
    expect(errors.map((e) => e.message)).toEqual([
      'identify needs an id and a signature',
      'identify needs an id and a signature',
      'identify needs an id and a signature',
    ]);
  });

  it('sends nothing for an identify without a signature: not another person’s traits under the signed-in id', async () => {
    const attune = tracker({ onError: () => undefined });
    attune.consent.set({ personalization: true });
    attune.identify('u-1', {}, { signature: 'c'.repeat(64) });
    // On a shared computer, the next person's details come in without a signature.
    attune.identify('u-2', { email: 'b@example.com' });
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    expect(names()).toEqual(['consent.updated', 'user.identified', 'product.viewed']);
    expect(JSON.stringify(sent)).not.toContain('b@example.com');
    expect(sent.flatMap((s) => s.events).at(-1)).toMatchObject({
      userId: 'u-1',
      userIdSignature: 'c'.repeat(64),
    });
  });
});

describe('refusing consent', () => {
  it('discards the waiting events, sends only the proof of refusal, and remembers no id', async () => {
    const attune = tracker({ autoPageView: true });
    attune.track('product.viewed', { productId: 'p1' });
    attune.consent.set({ analytics: false, personalization: false, marketing: false });
    attune.track('product.viewed', { productId: 'p2' });
    await attune.flush();
    expect(names()).toEqual(['consent.updated']);
    await settle();
    // Until delivered, the refusal's proof alone waits in the record (IndexedDB keeps nothing
    // now); delivered, the record is the choice alone.
    expect(storage.saved.flatMap((r) => r.proofs ?? []).map((e) => JSON.parse(e.json).name)).toEqual([
      'consent.updated',
    ]);
    expect(storage.saved.at(-1)).toEqual({ consent: expect.objectContaining({ policyVersion: '1' }) });
    expect(storage.writes).not.toContain('store');
  });

  it('withdrawing after a grant wipes what was stored and drops what was unsent', async () => {
    const attune = tracker({ flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    await attune.flush();
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    expect(storage.storedEvents.size).toBe(1);
    attune.consent.set({ analytics: false });
    await attune.flush();
    expect(storage.writes).toContain('wipe');
    expect(names()).toEqual(['consent.updated', 'consent.updated']);
  });
});

describe('batching', () => {
  it('sends when flushAt events are queued, without waiting for the timer', async () => {
    const attune = tracker({ flushAt: 3, flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    attune.track('a.b');
    await settle();
    expect(sent).toHaveLength(0);
    attune.track('a.b');
    await settle();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.names).toHaveLength(3);
  });

  it('sends what is queued when the interval passes', async () => {
    const attune = tracker({ flushInterval: 5000 });
    attune.consent.set({ analytics: true });
    await vi.advanceTimersByTimeAsync(4999);
    expect(sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(names()).toEqual(['consent.updated']);
    void attune;
  });
});

describe('delivery', () => {
  it('retries 503s and network errors with backoff until delivered, once', async () => {
    answers = [503, 503, 429];
    const attune = tracker();
    attune.consent.set({ analytics: true });
    attune.track('a.b');
    await attune.flush();
    for (let i = 0; i < 5; i++) await vi.advanceTimersByTimeAsync(60_000);
    expect(sent).toHaveLength(4);
    expect(new Set(ids()).size).toBe(2);
    expect(sent.at(-1)?.names).toEqual(['consent.updated', 'a.b']);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sent).toHaveLength(4);
  });

  it('reports a third try in a row with no answer as unreachable, once, and still delivers after', async () => {
    answers = ['no answer', 'no answer', 'no answer', 'no answer', 503];
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    await attune.flush();
    for (let i = 0; i < 6; i++) await vi.advanceTimersByTimeAsync(60_000);
    // Six tries: four unanswered, a 503, then the one the Worker took.
    expect(sent).toHaveLength(6);
    expect(errors).toEqual([{ code: 'unreachable', message: 'no answer from https://edge.test/v1/collect' }]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sent).toHaveLength(6);
  });

  it('drops a batch the Worker refuses for good and reports it', async () => {
    answers = [400];
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    await attune.flush();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sent).toHaveLength(1);
    expect(errors).toEqual([expect.objectContaining({ code: 'rejected', status: 400 })]);
  });

  it('passes on what the Worker says to fix when it refuses a batch (a 401 unknown write key)', async () => {
    answers = [
      {
        status: 401,
        body: {
          error: {
            code: 'unknown_write_key',
            message: 'unknown write key; check the writeKey your page sends',
          },
        },
      },
    ];
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    await attune.flush();
    await settle();
    expect(errors).toEqual([
      {
        code: 'rejected',
        status: 401,
        message: 'Worker answered 401: unknown write key; check the writeKey your page sends',
        errors: undefined,
      },
    ]);
  });

  it('reports why the Worker refused a batch none of whose events was valid (a 400 with per-field reasons)', async () => {
    const reason = { path: 'batch[0].properties.price', message: 'expected a number' };
    answers = [
      {
        status: 400,
        body: { error: { code: 'invalid_envelope', message: 'no event is valid', errors: [reason] } },
      },
      { status: 207, body: { accepted: 1, rejected: [{ index: 1, errors: [reason] }] } },
    ];
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    await attune.flush();
    attune.track('a.b');
    await attune.flush();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sent).toHaveLength(2);
    expect(errors).toEqual([
      expect.objectContaining({ code: 'invalid_event', status: 400, errors: [reason] }),
      expect.objectContaining({ code: 'invalid_event', status: 207, errors: [reason] }),
    ]);
  });

  it('reports invalid event names instead of sending them', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    attune.track('Add To Cart');
    await attune.flush();
    expect(names()).toEqual(['consent.updated']);
    expect(errors[0]?.code).toBe('invalid_event');
  });

  it('says what is wrong with an event it cannot send, and which one: what JSON cannot hold, or its size', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    const looped: Record<string, unknown> = { productId: 'p1' };
    looped.self = looped;
    // Typed code cannot pass these; a script-tag page can.
    const track = attune.track as (name: string, properties: unknown) => void;
    // Before the choice (held), and after it.
    track('product.viewed', looped);
    attune.consent.set({ analytics: true });
    track('cart.item.added', { productId: 'p1', quantity: 1n });
    track('search.performed', { query: 'x'.repeat(40_000) });
    attune.track('product.viewed', { productId: 'p2' });
    await attune.flush();
    expect(names()).toEqual(['consent.updated', 'product.viewed']);
    expect(errors.map((e) => [e.code, e.message.replace(/\s+/g, ' ')])).toEqual([
      [
        'invalid_event',
        "product.viewed: TypeError: Converting circular structure to JSON --> starting at object with constructor 'Object' --- property 'self' closes the circle",
      ],
      ['invalid_event', 'cart.item.added: TypeError: Do not know how to serialize a BigInt'],
      ['invalid_event', expect.stringMatching(/^search\.performed: 40\d{3} bytes, at most 32768$/)],
    ]);
  });

  it('bounds the outbox: the oldest events are dropped and counted', async () => {
    answers = Array(100).fill(503);
    const errors: AttuneError[] = [];
    const attune = tracker({ maxQueue: 5, flushAt: 100, onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    for (let i = 0; i < 9; i++) attune.track('a.b', { i });
    await settle();
    expect(storage.storedEvents.size).toBe(5);
    expect(errors.filter((e) => e.code === 'dropped')).toHaveLength(5);
    expect(errors.at(-1)?.message).toBe('queue full: 5 events dropped');
  });
});

describe('a returning visitor who consented', () => {
  it('resumes stored events from earlier pages and sends them in order', async () => {
    storage.orphans = [
      { id: '01JDZZZZZZZZZZZZZZZZZZZZZ2', json: '{"id":"01JDZZZZZZZZZZZZZZZZZZZZZ2"}', bytes: 35 },
      { id: '01JDZZZZZZZZZZZZZZZZZZZZZ1', json: '{"id":"01JDZZZZZZZZZZZZZZZZZZZZZ1"}', bytes: 35 },
    ];
    vi.mocked(fetch).mockImplementation(async (url, init) => {
      // The site's configuration, unchanged since the visitor's choice (version 1, analytics on offer).
      if (String(url).includes('/v1/config'))
        return Response.json({
          policyVersion: '1',
          categories: [
            { key: 'analytics', label: 'A', description: '', required: false, enabled: true, default: false },
          ],
        });
      const body = JSON.parse(String(init?.body)) as { batch: { id: string }[] };
      sent.push({ url: String(url), names: [], events: body.batch });
      return new Response('{"accepted":2,"rejected":[]}');
    });
    tracker({}, { anonymousId: 'anon-1', consent: { categories: { analytics: true }, policyVersion: '1' } });
    await settle();
    expect(ids()).toEqual(['01JDZZZZZZZZZZZZZZZZZZZZZ1', '01JDZZZZZZZZZZZZZZZZZZZZZ2']);
  });

  it('is asked again when the site publishes a new policy version', async () => {
    vi.mocked(fetch).mockImplementation(
      async () =>
        new Response(
          JSON.stringify({
            policyVersion: '2',
            categories: [
              {
                key: 'analytics',
                label: 'A',
                description: '',
                required: false,
                enabled: true,
                default: false,
              },
            ],
          }),
        ),
    );
    const attune = tracker(
      {},
      { anonymousId: 'anon-1', consent: { categories: { analytics: true }, policyVersion: '1' } },
    );
    const changes: boolean[] = [];
    attune.consent.onChange((state) => changes.push(state.decided));
    await settle();
    expect(attune.consent.get()).toMatchObject({ decided: false, policyVersion: '2' });
    expect(changes).toEqual([false]);
  });
});

describe('decide', () => {
  const decideQuery = () => {
    const call = vi.mocked(fetch).mock.calls.findLast(([url]) => String(url).includes('/v1/decide'));
    return Object.fromEntries(new URL(String(call?.[0])).searchParams);
  };

  it('asks for the slots with the write key, and names the browser only once personalization is granted, never the user id or its signature', async () => {
    const attune = tracker();
    // The Worker answers 404 here: the page keeps its own content.
    expect(await attune.decide(['hero', 'footer'])).toEqual({ personalized: false, decisions: {} });
    expect(decideQuery()).toEqual({ slots: 'hero,footer', writeKey: 'pk_test' });
    attune.consent.set({ analytics: true });
    await attune.decide(['hero']);
    expect(decideQuery()).toEqual({ slots: 'hero', writeKey: 'pk_test' });
    attune.consent.set({ personalization: true });
    attune.identify('u-1', {}, { signature: 'c'.repeat(64) });
    await attune.decide(['hero']);
    expect(decideQuery()).toEqual({
      slots: 'hero',
      writeKey: 'pk_test',
      anonymousId: attune.anonymousId(),
    });
  });
});
