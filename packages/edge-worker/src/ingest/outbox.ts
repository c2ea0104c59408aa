/**
 * Forwarding to the EVENTS queue without losing what the queue refuses: messages a send
 * could not deliver (after its one retry) are parked at the ProfileDO of the person they
 * belong to, which sends them again from its alarm until the queue takes them (see
 * ProfileDO.park). Why the person's object: it has already applied and deduped the events,
 * so the browser's retry could never bring them back; it is durable, ordered, and what
 * an erasure wipes, so a parked message never outlives its person's erasure.
 */
import type { QueueMessage } from '@attune/shared-schema';
import { count, flushStats, log } from '../observability/index.ts';
import { profileStub } from '../profile/client.ts';
import type { PersonKey } from '../profile/types.ts';
import { QueueSendError, sendMessages } from './queue-producer.ts';

/** The messages to park at one person's object, in the order they were to be sent. */
export interface ParkingGroup {
  siteId: string;
  personKey: PersonKey;
  messages: QueueMessage[];
}

function isPersonKey(value: string): value is PersonKey {
  return value.startsWith('anon:') || value.startsWith('user:');
}

/**
 * Groups unsent messages by the person they belong to. A `covisits` message names nobody
 * (aggregate "viewed next" pairs): it goes with the person of the site's message before
 * it, which its request produced alongside (or, if it comes first, the next one). Messages
 * that belong to no person of their site are returned apart: nobody can keep them.
 */
export function parkingGroups(messages: readonly QueueMessage[]): {
  groups: ParkingGroup[];
  homeless: QueueMessage[];
} {
  const groups = new Map<string, ParkingGroup>();
  const lastOfSite = new Map<string, ParkingGroup>();
  let waiting: QueueMessage[] = [];
  for (const message of messages) {
    if (!('personId' in message) || !isPersonKey(message.personId)) {
      const group = lastOfSite.get(message.siteId);
      if (group !== undefined) group.messages.push(message);
      else waiting.push(message);
      continue;
    }
    const key = `${message.siteId}\n${message.personId}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { siteId: message.siteId, personKey: message.personId, messages: [] };
      groups.set(key, group);
    }
    const early = waiting.filter((m) => m.siteId === message.siteId);
    if (early.length > 0) {
      group.messages.push(...early);
      waiting = waiting.filter((m) => m.siteId !== message.siteId);
    }
    group.messages.push(message);
    lastOfSite.set(message.siteId, group);
  }
  return { groups: [...groups.values()], homeless: waiting };
}

/**
 * Sends messages to the EVENTS queue (each sendBatch retried once); what the queue still
 * refuses is parked at its person's object (counted `queue_parked`). Only what cannot be
 * parked either is lost: counted `queue_failed` and logged without personal data.
 * Never rejects.
 */
export async function forwardMessages(env: Env, messages: readonly QueueMessage[]): Promise<void> {
  try {
    await sendMessages(env.EVENTS, messages);
    return;
  } catch (err) {
    const unsent = err instanceof QueueSendError ? err.unsent : [...messages];
    const cause = err instanceof QueueSendError ? err.cause : err;
    const { groups, homeless } = parkingGroups(unsent);
    const parked = await Promise.all(
      groups.map(async (group) => {
        try {
          const taken: number = await profileStub(env, group.siteId, group.personKey).park(group.messages);
          return { group, taken, failed: false };
        } catch {
          return { group, taken: 0, failed: true };
        }
      }),
    );
    const lost =
      homeless.length + parked.filter((p) => p.failed).reduce((n, p) => n + p.group.messages.length, 0);
    const taken = parked.reduce((n, p) => n + p.taken, 0);
    count('queue_parked', taken);
    count('queue_failed', lost);
    // Stored now: this runs after the response (waitUntil), past the request's own flush, and
    // the decide and proxy routes flush nothing, so the counts waited in the isolate for an
    // ingest request that might never come.
    await flushStats(env);
    log(lost > 0 ? 'error' : 'warn', 'queue.send_failed', {
      sites: [...new Set(unsent.map((m) => m.siteId))].join(','),
      messages: unsent.length,
      parked: taken,
      lost,
      error: cause instanceof Error ? cause.name : 'unknown',
    });
  }
}
