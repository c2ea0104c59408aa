/**
 * Test support for ingest tests (imported only by *.test.ts): event builders, a request
 * helper that drives the real Worker's fetch handler inside workerd, a recorder of what the
 * Worker sent to the EVENTS queue, and a person made inactive past the retention period.
 */

import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { ConsentState, CustomerAction, QueueMessage } from '@attune/shared-schema';
import { afterEach, vi } from 'vitest';
import { isInHoldout } from '../decide/holdout.ts';
import { type SignatureForm, signUserId, signUserIdUntil } from '../identity/index.ts';
import worker from '../index.ts';
import type { profileStub } from '../profile/client.ts';
import type { ProfileDO } from '../profile/profile-do.ts';
import { newUlid } from '../profile/ulid.ts';
import { getSiteById } from '../sites/index.ts';

export const ORIGIN = 'http://localhost:3000';
export const WRITE_KEY = 'pk_demo_attune';
export const SITE = 'demo';
export const IDENTITY_SECRET = 'test-identity-secret';
export const SERVER_KEY = 'sk_test_server_key';
export const ADMIN_TOKEN = 'test-admin-token';

/** The fields of an event on the wire: what the fuzz tests spoil one at a time with junk. */
export const EVENT_FIELDS = [
  'id',
  'type',
  'name',
  'timestamp',
  'anonymousId',
  'userId',
  'userIdSignature',
  'sessionId',
  'context',
  'properties',
  'traits',
  'schemaVersion',
];

export const ALL: ConsentState = {
  categories: { necessary: true, analytics: true, personalization: true, marketing: true },
  policyVersion: '1',
};

/** Consent granting exactly the named purposes. */
export function consentFor(...purposes: string[]): ConsentState {
  const categories: Record<string, boolean> = {
    necessary: true,
    analytics: false,
    personalization: false,
    marketing: false,
  };
  for (const p of purposes) categories[p] = true;
  return { categories, policyVersion: '1' };
}

let counter = 0;
/**
 * A fresh anonymous id, unique per call, so tests never share a person; never one of the
 * holdout group (HOLDOUT_PERCENT 10), whom triggers and decide leave unpersonalized on
 * purpose: a random id was held out one time in ten. Tests of the holdout choose theirs
 * (decide/fixtures/people.ts, anonymousIdInGroup).
 */
export function anonId(label = 'a'): string {
  counter++;
  for (;;) {
    const id = `${label}-${Date.now().toString(36)}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
    if (!isInHoldout(`anon:${id}`, 10)) return id;
  }
}

/** A valid v1 event; `consent` defaults to everything granted. */
export function makeEvent(
  anonymousId: string,
  name = 'page.viewed',
  extra: Partial<CustomerAction> & { consent?: ConsentState | null } = {},
): CustomerAction {
  const { consent, ...rest } = extra;
  const type = name === 'page.viewed' ? 'page' : name === 'consent.updated' ? 'consent' : 'track';
  const event: CustomerAction = {
    id: newUlid(),
    type,
    name,
    timestamp: new Date().toISOString(),
    anonymousId,
    schemaVersion: 1,
    ...rest,
  };
  if (consent !== null && event.context?.consent === undefined)
    event.context = { ...(event.context ?? {}), consent: consent ?? ALL };
  return event;
}

export function productView(
  anonymousId: string,
  productId: string,
  category: string,
  extra: Partial<CustomerAction> = {},
) {
  return makeEvent(anonymousId, 'product.viewed', {
    properties: { productId, category, tags: [`${category}-tag`] },
    ...extra,
  });
}

export async function signed(userId: string): Promise<string> {
  return (await demoSignatures()) === 'expiring'
    ? signUserIdUntil(IDENTITY_SECRET, userId, Math.floor(Date.now() / 1000) + 3600)
    : signUserId(IDENTITY_SECRET, userId);
}

/** The form of signature the demo site takes, as wrangler.toml configures it (its settings.identity.signatures). */
async function demoSignatures(): Promise<SignatureForm | undefined> {
  return (await getSiteById(env, SITE))?.signatures;
}

export interface SendOptions {
  origin?: string | null;
  headers?: Record<string, string>;
  method?: string;
  path?: string;
  env?: Env;
}

/** Sends a request through the Worker's fetch handler and waits for its background work. */
export async function call(body: BodyInit | null, options: SendOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'text/plain;charset=UTF-8', ...options.headers };
  const origin = options.origin === undefined ? ORIGIN : options.origin;
  if (origin !== null) headers.origin = origin;
  const request = new Request(`http://attune.test${options.path ?? '/v1/collect'}`, {
    method: options.method ?? 'POST',
    headers,
    body,
  });
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, options.env ?? env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** `text` gzipped, as a server library compresses a body. */
export async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Posts a collect envelope. */
export function collect(
  batch: unknown[],
  options: SendOptions & { writeKey?: string; sentAt?: string } = {},
) {
  return call(
    JSON.stringify({
      writeKey: options.writeKey ?? WRITE_KEY,
      sentAt: options.sentAt ?? new Date().toISOString(),
      batch,
    }),
    options,
  );
}

/** Resolves with `promise`'s value, or with 'timed out' after `ms` (a deadlock shows as the latter). */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timed out'> {
  return Promise.race([
    promise,
    new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), ms)),
  ]);
}

/** The admin token's Authorization header. */
export const ADMIN_HEADERS = { authorization: `Bearer ${ADMIN_TOKEN}` };

/**
 * An access or erasure request for `personKey` (`GET`/`DELETE /v1/people/:id`), as the admin
 * by default; `query` is appended (`&scope=edge`: access to the edge's part alone).
 */
export function people(
  personKey: string,
  method: string,
  headers: Record<string, string> = ADMIN_HEADERS,
  query = '',
) {
  return call(null, {
    method,
    path: `/v1/people/${encodeURIComponent(personKey)}?site=${SITE}${query}`,
    origin: null,
    headers,
  });
}

/** A Segment HTTP Tracking API call (`/v1/batch`, `/v1/track`, …) with Basic auth on `key`. */
export function segment(path: string, body: unknown, key = SERVER_KEY) {
  return call(JSON.stringify(body), {
    path,
    origin: null,
    headers: { authorization: `Basic ${btoa(`${key}:`)}`, 'content-type': 'application/json' },
  });
}

/**
 * Records every message the Worker hands to the EVENTS queue (intercepted at the binding,
 * not delivered): all of them in `messages`, and each sendBatch call's in `calls`. A call
 * takes `delayMs` first, as a send over the network does.
 */
export function recordQueue(
  target: Env = env,
  { delayMs = 0 }: { delayMs?: number } = {},
): { messages: QueueMessage[]; calls: QueueMessage[][]; restore: () => void } {
  const messages: QueueMessage[] = [];
  const calls: QueueMessage[][] = [];
  const batch = vi.spyOn(target.EVENTS, 'sendBatch').mockImplementation(async (items) => {
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    const call = [...items].map((item) => item.body as QueueMessage);
    messages.push(...call);
    calls.push(call);
    return undefined as unknown as QueueSendBatchResponse;
  });
  const single = vi.spyOn(target.EVENTS, 'send').mockImplementation(async (body) => {
    messages.push(body as QueueMessage);
    return undefined as unknown as QueueSendResponse;
  });
  return {
    messages,
    calls,
    restore: () => {
      batch.mockRestore();
      single.mockRestore();
    },
  };
}

/**
 * The queue recorded for a whole test file: each test starts with an empty recording. The
 * handle stays one object for the file; `restart()` begins a fresh recording inside a test
 * (after the test made the queue fail, or to see only what a later step sends).
 */
export function useRecordedQueue(target: Env = env): {
  readonly messages: QueueMessage[];
  readonly calls: QueueMessage[][];
  restart(): void;
} {
  let recording = recordQueue(target);
  const restart = () => {
    recording.restore();
    recording = recordQueue(target);
  };
  afterEach(restart);
  return {
    get messages() {
      return recording.messages;
    },
    get calls() {
      return recording.calls;
    },
    restart,
  };
}

/**
 * A queue call that never settles, neither taken nor refused (the queue's service stuck). It
 * holds a timer, as a call out over the network holds a connection, so the runtime does not
 * take the waiting request for hung code.
 */
export function stuckQueueCall<T>(): Promise<T> {
  return new Promise<T>(() => {
    setTimeout(() => undefined, 60_000);
  });
}

/** An env whose sites carry tight rate limits, for 429 tests. */
export function envWithSites(sites: unknown[]): Env {
  // A site given without settings.identity takes the signatures wrangler.toml configures
  // for it, so a test changing a site's limits does not change which signatures it takes.
  const configured = new Map<unknown, unknown>(
    (JSON.parse(env.ATTUNE_SITES) as { id: string; settings?: { identity?: unknown } }[]).map((site) => [
      site.id,
      site.settings?.identity,
    ]),
  );
  const withIdentity = sites.map((site) => {
    if (site === null || typeof site !== 'object' || !('id' in site)) return site;
    const settings = 'settings' in site && typeof site.settings === 'object' ? site.settings : {};
    const identity = configured.get(site.id);
    if (identity === undefined || (settings !== null && 'identity' in settings)) return site;
    return { ...site, settings: { ...settings, identity } };
  });
  return { ...env, ATTUNE_SITES: JSON.stringify(withIdentity) } as unknown as Env;
}

/** The tables a Durable Object's SQLite storage holds, without the runtime's own (`_cf_…`). */
export function storedTables(state: DurableObjectState): string[] {
  return state.storage.sql
    .exec<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
    )
    .toArray()
    .map((row) => row.name);
}

/** Makes the person in `stub` inactive for a day longer than the retention period, with their alarm due in a minute. */
export async function inactivePastRetention(stub: ReturnType<typeof profileStub>): Promise<void> {
  const retentionMs = Number(env.PROFILE_RETENTION_DAYS) * 86_400_000;
  await runInDurableObject(stub, async (_o: ProfileDO, state) => {
    const row = state.storage.sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = 'profile'").one();
    const profile = JSON.parse(row.v) as { lastSeen: string };
    profile.lastSeen = new Date(Date.now() - retentionMs - 86_400_000).toISOString();
    state.storage.sql.exec("UPDATE kv SET v = ? WHERE k = 'profile'", JSON.stringify(profile));
    await state.storage.setAlarm(Date.now() + 60_000);
  });
}
