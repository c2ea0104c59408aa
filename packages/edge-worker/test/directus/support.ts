/**
 * Helpers for the Directus integration tests (run inside workerd): queue messages,
 * running the real queue() handler on a batch, admin reads of what landed in Directus,
 * a consent choice sent to the Worker under wrangler dev, and stopping/starting Directus
 * or refusing its Flows' calls to the Worker through the global setup's control server.
 */

import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  type QueueResult,
} from 'cloudflare:test';
import { env as workerEnv } from 'cloudflare:workers';
import {
  type ConsentMessage,
  DEFAULT_CONSENT_CONFIG,
  type ErasureMessage,
  type EventMessage,
  type EventsMessage,
  type ProfileMessage,
  type QueueMessage,
} from '@attune/shared-schema';
import { expect, vi } from 'vitest';
import worker from '../../src/index.ts';
import { people, recordQueue } from '../../src/ingest/test-support.ts';
import { isErased } from '../../src/profile/client.ts';
import { newUlid } from '../../src/profile/ulid.ts';
import { CACHE_CHECK_CRON } from '../../src/schedule/index.ts';
import type { ErasureCheck } from '../../src/sync/consumer.ts';
import type { DeadLetter } from '../../src/sync/index.ts';
import { DIRECTUS_TEST } from './constants.mjs';

export const env = (): Env => workerEnv;
export const SITE = 'demo';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
let counter = 0;

/** A fresh ULID (monotonic within a test run). */
export function ulid(at: number = Date.now()): string {
  let time = '';
  let t = at;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD.charAt(t % 32) + time;
    t = Math.floor(t / 32);
  }
  counter++;
  let rand = '';
  let c = counter;
  const noise = crypto.getRandomValues(new Uint8Array(10));
  for (let i = 0; i < 6; i++) {
    rand = CROCKFORD.charAt(c % 32) + rand;
    c = Math.floor(c / 32);
  }
  for (const b of noise) rand += CROCKFORD.charAt(b % 32);
  return time + rand;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 12)}`;
}

export function eventMessage(
  personId: string,
  overrides: { name?: string; receivedAt?: string; properties?: Record<string, string | number> } = {},
): EventMessage {
  const now = new Date().toISOString();
  const anonymousId = personId.startsWith('anon:') ? personId.slice(5) : 'a-browser';
  return {
    kind: 'event',
    siteId: SITE,
    personId,
    event: {
      id: ulid(),
      type: 'track',
      name: overrides.name ?? 'product.viewed',
      timestamp: now,
      anonymousId,
      properties: overrides.properties ?? { productId: 'p-wok', category: 'kitchen' },
      context: { page: { path: '/p/wok' }, locale: 'en-GB', screen: { width: 1, height: 1 } },
      schemaVersion: 1,
    },
    enrichment: {
      receivedAt: overrides.receivedAt ?? now,
      correctedTimestamp: overrides.receivedAt ?? now,
      device: 'desktop',
    },
    purposes: ['analytics', 'personalization'],
  };
}

/** The events of one ingest run as the Worker sends them: one message, its events' ids in `ids`. */
export function eventsMessage(
  personId: string,
  count: number,
  overrides: Parameters<typeof eventMessage>[1] = {},
): EventsMessage {
  const singles = Array.from({ length: count }, () => eventMessage(personId, overrides));
  return {
    kind: 'events',
    siteId: SITE,
    personId,
    purposes: ['analytics', 'personalization'],
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    events: singles.map(({ event, enrichment }) => ({ event, enrichment })),
  };
}

/** The event ids an events message carries. */
export function idsOf(...messages: EventsMessage[]): string[] {
  return messages.flatMap((m) => m.events.map((e) => e.event.id));
}

export function consentMessage(personId: string): ConsentMessage {
  return {
    kind: 'consent',
    siteId: SITE,
    personId,
    eventId: ulid(),
    consent: {
      categories: { necessary: true, analytics: true, personalization: true, marketing: false },
      policyVersion: '1',
    },
    source: 'banner',
    recordedAt: new Date().toISOString(),
  };
}

/**
 * When the test people's profiles began: one life for all of a person's snapshots, as a
 * ProfileDO keeps it (only a merge moves it, earlier). A snapshot first seen after the row's
 * last activity is a later life of the person (see newerSnapshot).
 */
const LIFE_BEGAN = new Date(Date.now() - 24 * 60 * 60 * 1000).toISOString();

export function profileMessage(personId: string, version: number, segment: string): ProfileMessage {
  const now = new Date().toISOString();
  return {
    kind: 'profile',
    siteId: SITE,
    personId,
    version,
    profile: {
      anonymousIds: [personId.replace(/^anon:/, '')],
      traits: {},
      interests: { 'category:kitchen': version },
      segments: [segment],
      counters: { events: version },
      firstSeen: LIFE_BEGAN,
      lastSeen: now,
    },
  };
}

export function erasureMessage(personId: string): ErasureMessage {
  return {
    kind: 'erasure',
    siteId: SITE,
    personId,
    anonymousIds: [personId.replace(/^anon:/, '')],
    requestedAt: new Date().toISOString(),
  };
}

let msgSeq = 0;
export interface Delivery {
  id: string;
  body: unknown;
  attempts?: number;
}

/** A delivery of these bodies (fresh message ids), or a redelivery when ids are given. */
export function deliveries(bodies: unknown[]): Delivery[] {
  return bodies.map((body) => ({ id: `msg-${++msgSeq}-${crypto.randomUUID().slice(0, 8)}`, body }));
}

/** The ack/retry outcome of a batch, with the delay each retry asked for. */
export type ConsumeResult = QueueResult & { delays: Map<string, number | undefined> };

/** Runs the Worker's real queue() handler on one batch (of `queue`) and returns its ack/retry outcome. */
export async function consume(
  items: Delivery[],
  attempts = 1,
  queue = 'attune-events',
): Promise<ConsumeResult> {
  const batch = createMessageBatch(
    queue,
    items.map((m) => ({ id: m.id, timestamp: new Date(), attempts: m.attempts ?? attempts, body: m.body })),
  );
  // getQueueResult does not report delaySeconds: watch retry() itself (it still runs).
  const delays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    vi.spyOn(message, 'retry').mockImplementation((options) => {
      delays.set(message.id, options?.delaySeconds);
      retry(options);
    });
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, env());
  return { ...(await getQueueResult(batch, ctx)), delays };
}

/** Delivers the messages the Worker queued so far (taken from `queued`) to the real consumer, as the queue would. */
export async function syncQueued(queued: QueueMessage[]): Promise<void> {
  const result = await consume(deliveries(queued.splice(0)));
  expect(result.retryMessages).toEqual([]);
}

/** Records what goes to the dead-letter queue (the real binding still receives it). */
export function recordDeadLetters(): { letters: DeadLetter[]; restore: () => void } {
  const letters: DeadLetter[] = [];
  const dlq = env().EVENTS_DLQ;
  const original = dlq.send.bind(dlq);
  const spy = vi.spyOn(dlq, 'send').mockImplementation(async (body, options) => {
    letters.push(body as DeadLetter);
    return original(body, options);
  });
  return { letters, restore: () => spy.mockRestore() };
}

let adminAccess: string | undefined;

/** An admin access token for the test instance (to look at what landed, as an analyst would). */
export async function adminToken(): Promise<string> {
  if (adminAccess) return adminAccess;
  const res = await fetch(`${DIRECTUS_TEST.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: DIRECTUS_TEST.adminEmail, password: DIRECTUS_TEST.adminPassword }),
  });
  const body = (await res.json()) as { data: { access_token: string } };
  adminAccess = body.data.access_token;
  return adminAccess;
}

/** An admin REST call against the test Directus; returns `data`. */
export async function admin<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${DIRECTUS_TEST.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  if (res.status === 204) return undefined as T;
  return ((await res.json()) as { data: T }).data;
}

/** Rows of a collection matching a filter (admin). */
export function rows<T = Record<string, unknown>>(
  collection: string,
  filter: Record<string, unknown>,
): Promise<T[]> {
  return admin<T[]>(
    'GET',
    `/items/${collection}?limit=-1&filter=${encodeURIComponent(JSON.stringify(filter))}`,
  );
}

/** Stops, starts or upgrades (bootstraps again) the test Directus, through the global setup's control server. */
export async function directusControl(action: 'stop' | 'start' | 'upgrade'): Promise<void> {
  const res = await fetch(`${DIRECTUS_TEST.controlUrl}/directus/${action}`, { method: 'POST' });
  if (!res.ok) throw new Error(`directus ${action}: ${await res.text()}`);
  adminAccess = undefined;
}

/** What the Worker under wrangler dev has printed so far (its last 1 MB), from the global setup. */
export async function workerOutput(): Promise<string> {
  const res = await fetch(`${DIRECTUS_TEST.controlUrl}/worker/output`);
  if (!res.ok) throw new Error(`worker output: ${res.status}`);
  return res.text();
}

/**
 * A consent choice (analytics and personalization, not marketing) sent to the Worker's
 * /v1/collect as the browser (an `origin`) or the shop's backend (`authorization`) sends it.
 */
export async function recordConsent(
  who: { anonymousId: string; userId?: string },
  headers: Record<string, string>,
): Promise<Response> {
  const consent = {
    categories: { necessary: true, analytics: true, personalization: true, marketing: false },
    policyVersion: DEFAULT_CONSENT_CONFIG.policyVersion,
  };
  return fetch(`${DIRECTUS_TEST.workerUrl}/v1/collect`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', ...headers },
    body: JSON.stringify({
      writeKey: 'pk_demo_attune',
      sentAt: new Date().toISOString(),
      batch: [
        {
          id: newUlid(),
          type: 'consent',
          name: 'consent.updated',
          timestamp: new Date().toISOString(),
          ...who,
          properties: { ...consent, source: 'banner' },
          context: { consent },
          schemaVersion: 1,
        },
      ],
    }),
  });
}

/**
 * Makes the Flows' calls to the Worker answer `status` (as a Worker down, being deployed or
 * overloaded does), or pass on again (`undefined`), through the global setup's control server.
 */
export async function refuseFlows(status: number | undefined): Promise<void> {
  const res = await fetch(
    `${DIRECTUS_TEST.controlUrl}/flows/${status === undefined ? 'pass' : `refuse?status=${status}`}`,
    { method: 'POST' },
  );
  if (!res.ok) throw new Error(`flows: ${await res.text()}`);
}

/** The paths of the Flows' calls refused since `refuseFlows` began refusing. */
export async function refusedFlowCalls(): Promise<string[]> {
  return (await (await fetch(`${DIRECTUS_TEST.controlUrl}/flows/refused`)).json()) as string[];
}

/** A browser's consent choice (analytics and personalization), sent as the tag sends it. */
export async function consentedInBrowser(anonymousId: string): Promise<void> {
  expect((await recordConsent({ anonymousId }, { origin: 'http://localhost:3000' })).status).toBe(200);
}

/**
 * An order created in Directus as a shop's backend creates it (the order Flow fires on it):
 * paid, placed now, unless `fields` say otherwise.
 */
export async function placeOrder(
  anonymousId: string,
  total: number,
  fields: { status?: string; created_at?: string; site_id?: string } = {},
): Promise<{ id: string; createdAt: string }> {
  const id = uniqueId('order');
  const createdAt = fields.created_at ?? new Date().toISOString();
  await admin('POST', '/items/orders', {
    id,
    site_id: 'demo',
    anonymous_id: anonymousId,
    total,
    currency: 'EUR',
    items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
    status: 'paid',
    ...fields,
    created_at: createdAt,
  });
  return { id, createdAt };
}

/** A browser's orders and revenue, as the edge holds them (the Worker's access answer). */
export async function ordersAtEdge(anonymousId: string): Promise<{ orders: number; revenue: number }> {
  const res = await fetch(
    `${DIRECTUS_TEST.workerUrl}/v1/people/${encodeURIComponent(`anon:${anonymousId}`)}?scope=edge&site=demo`,
    { headers: { authorization: `Bearer ${DIRECTUS_TEST.adminToken}` } },
  );
  const held = (await res.json()) as { profile?: { counters: Record<string, number> } };
  return { orders: held.profile?.counters.orders ?? 0, revenue: held.profile?.counters.revenue ?? 0 };
}

/** Runs the Worker's five-minute scheduled handler (the order catch-up among it), as its Cron Trigger does. */
export async function scheduledRun(): Promise<void> {
  const res = await fetch(
    `${DIRECTUS_TEST.workerUrl}/__scheduled?cron=${encodeURIComponent(CACHE_CHECK_CRON)}`,
  );
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

/** The event log's order.completed rows of an order. */
export async function loggedOrder(
  orderId: string,
): Promise<{ id: string; properties: { orderId: string } }[]> {
  return (
    await rows<{ id: string; properties: { orderId: string } }>('events', {
      name: { _eq: 'order.completed' },
    })
  ).filter((e) => e.properties.orderId === orderId);
}

/** Polls `check` until it returns a value other than undefined (Flows run asynchronously). */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Erases `person` at the edge (DELETE: tombstone) and returns the messages it queued, which
 * no consumer has seen yet: the Directus rows are still there.
 */
export async function eraseAtEdge(e: Env, person: string): Promise<QueueMessage[]> {
  const queue = recordQueue(e);
  try {
    expect((await people(person, 'DELETE')).status).toBe(200);
  } finally {
    queue.restore();
  }
  return queue.messages;
}

/** Erases `person` at the edge (DELETE) and runs the sync of its erasure message to the end. */
export async function eraseNow(e: Env, person: string): Promise<void> {
  const queued = await eraseAtEdge(e, person);
  await consume(deliveries(queued.filter((m) => m.kind === 'erasure')));
}

/**
 * The real erasure check, but `person` is erased to the end (tombstone, erasure message,
 * its sync) right after the first check answered: a consumer's write then lands after the
 * erasure ran. `erased()` says whether that happened.
 */
export function erasedRightAfterFirstCheck(person: string): { check: ErasureCheck; erased: () => boolean } {
  let erased = false;
  const check: ErasureCheck = async (e, siteId, key) => {
    const answer = await isErased(e, siteId, key);
    if (!erased) {
      erased = true;
      await eraseNow(e, person);
    }
    return answer;
  };
  return { check, erased: () => erased };
}

/** The real erasure check the first time, then failing (the person's object unavailable). */
export function checkFailingAfterFirst(): ErasureCheck {
  let asked = 0;
  return async (e, siteId, key) => {
    asked++;
    if (asked > 1) throw new Error('object unavailable');
    return isErased(e, siteId, key);
  };
}
