/**
 * Messages on the EVENTS queue, from the Worker (producer) to the Directus sync
 * (consumer). Each message is self-describing (`kind`) and carries its own idempotency
 * key, so redelivery never duplicates anything downstream.
 */
import { z } from 'zod';
import { type ConsentState, type Purpose, ULID_PATTERN } from './constants.ts';
import { ConsentStateSchema, type CustomerAction, CustomerActionSchema } from './event.ts';

/** What the Worker derived from the request, kept apart from what the producer sent. */
export interface Enrichment {
  receivedAt: string;
  /** Server-corrected event time (client timestamp shifted by the sentAt/receivedAt skew). */
  correctedTimestamp: string;
  device?: 'desktop' | 'mobile' | 'tablet' | 'bot' | 'unknown';
  browser?: string;
  os?: string;
  country?: string;
  region?: string;
  city?: string;
  /**
   * The consent record the edge judged the event by: the id of the person's choice in force
   * when the event was accepted (`consent_records.id`, that choice's event id), which holds its
   * categories, policy version, time and source; for an event the edge makes (a promo, a
   * recommendation, a decision served), the choice it was made under. Absent when no choice
   * was on record (a browser's event then went by its own claim alone, `context.consent`),
   * and in messages queued before it was kept.
   */
  consentId?: string;
}

/** An accepted event for the event log (analytics) and marketing sinks. */
export interface EventMessage {
  kind: 'event';
  siteId: string;
  /** The person the event belongs to: `anon:<anonymousId>` or `user:<userId>` once verified. */
  personId: string;
  event: CustomerAction;
  enrichment: Enrichment;
  purposes: Purpose[];
  traceparent?: string;
}

/** One event of an EventsMessage: what an EventMessage carries apart from what its message shares. */
export interface EventsItem {
  event: CustomerAction;
  enrichment: Enrichment;
}

/**
 * The accepted events of one ingest run (one person) that share a set of purposes, in
 * one message: one message per event cost the producer a queue message each. Same
 * meaning as one EventMessage per item with this message's site, person, purposes and
 * traceparent (see `eventMessagesOf`). A run's events are split over several messages
 * to stay under the Queues limit of 128 KB a message.
 */
export interface EventsMessage {
  kind: 'events';
  siteId: string;
  personId: string;
  purposes: Purpose[];
  events: EventsItem[];
  traceparent?: string;
}

/** A consent change, with proof: when, under which policy, from where. */
export interface ConsentMessage {
  kind: 'consent';
  siteId: string;
  personId: string;
  eventId: string;
  /** The choice as the edge enforces it: normalized against the site's categories, GPC applied. */
  consent: ConsentState;
  /**
   * The categories as the person chose them, under `consent.policyVersion` (claimedCategories):
   * the proof of a choice made under an older policy names what that policy offered. Absent
   * in messages queued before it was sent.
   */
  claimed?: Record<string, boolean>;
  source: string;
  /** When the Worker received the choice. */
  recordedAt: string;
  /**
   * When the person made it (the event's clock-corrected time); absent in messages queued
   * before it was added. A choice made earlier than the one in force is proof only.
   */
  chosenAt?: string;
  /**
   * Whether Global Privacy Control was in force for the choice (`Sec-GPC: 1` on its request,
   * or source `gpc`): why marketing is off. Absent in messages queued before it was sent: unknown.
   */
  gpc?: boolean;
  traceparent?: string;
}

/** The latest profile snapshot of a person (latest state wins downstream). */
export interface ProfileMessage {
  kind: 'profile';
  siteId: string;
  personId: string;
  /** Monotonic per person: a consumer keeps the highest. */
  version: number;
  profile: {
    anonymousIds: string[];
    userId?: string;
    traits: Record<string, unknown>;
    interests: Record<string, number>;
    segments: string[];
    counters: Record<string, number>;
    consent?: ConsentState;
    firstSeen: string;
    lastSeen: string;
  };
  traceparent?: string;
}

/** Why a person was erased: asked for (`DELETE /v1/people/:id`), or inactive past the retention period. */
export type ErasureReason = 'request' | 'retention';

/** A person erased: delete their rows downstream and keep only proof that it happened. */
export interface ErasureMessage {
  kind: 'erasure';
  siteId: string;
  personId: string;
  anonymousIds: string[];
  userId?: string;
  requestedAt: string;
  /**
   * The erasure's own id (a ULID), which its proof in Directus is kept under: the answer to
   * the DELETE gives it, so whoever asked can point to the proof. Absent from messages
   * queued before it existed (their proof is keyed by the queue message id).
   */
  erasureId?: string;
  reason?: ErasureReason;
  traceparent?: string;
}

/**
 * A "viewed next" transition (product `from` viewed, then `to`), with no person attached:
 * aggregate input for co-visitation counts, sent only under personalization consent.
 */
export interface CovisitMessage {
  kind: 'covisit';
  siteId: string;
  from: string;
  to: string;
  at: string;
}

/**
 * The "viewed next" transitions of one ingest request, in one message: a 20-event batch
 * of product views yields a pair per view, and one message per pair cost the producer a
 * queue message each. Same meaning as that many CovisitMessages.
 */
export interface CovisitsMessage {
  kind: 'covisits';
  siteId: string;
  pairs: { from: string; to: string; at: string }[];
}

export type QueueMessage =
  | EventMessage
  | EventsMessage
  | ConsentMessage
  | ProfileMessage
  | ErasureMessage
  | CovisitMessage
  | CovisitsMessage;

/** Events in one EventsMessage: a collect request holds at most LIMITS.maxBatchEvents. */
export const MAX_EVENTS_PER_MESSAGE = 100;

/**
 * The one-event message an EventsMessage item stands for: what the consumer writes, and
 * what it dead-letters when that one event is rejected.
 */
export function eventMessageOf(message: EventsMessage, item: EventsItem): EventMessage {
  const single: EventMessage = {
    kind: 'event',
    siteId: message.siteId,
    personId: message.personId,
    event: item.event,
    enrichment: item.enrichment,
    // A copy: each event owns its list, as a single EventMessage does.
    purposes: [...message.purposes],
  };
  if (message.traceparent !== undefined) single.traceparent = message.traceparent;
  return single;
}

/** The events of some messages, one EventMessage each (`event` and `events` kinds), in order. */
export function eventMessagesOf(messages: readonly QueueMessage[]): EventMessage[] {
  const out: EventMessage[] = [];
  for (const m of messages) {
    if (m.kind === 'event') out.push(m);
    else if (m.kind === 'events') for (const item of m.events) out.push(eventMessageOf(m, item));
  }
  return out;
}

const personId = z.string().min(1).max(300);
const purposeList = z.array(z.enum(['analytics', 'personalization', 'marketing']));
const enrichmentSchema = z.looseObject({ receivedAt: z.string(), correctedTimestamp: z.string() });
const base = { siteId: z.string().min(1).max(64), personId, traceparent: z.string().max(128).optional() };

/** Validates a queue message on the consumer side, so a poison message is named, not retried forever. */
export const QueueMessageSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('event'),
    ...base,
    event: CustomerActionSchema,
    enrichment: enrichmentSchema,
    purposes: purposeList,
  }),
  z.object({
    kind: z.literal('events'),
    ...base,
    purposes: purposeList,
    events: z
      .array(z.object({ event: CustomerActionSchema, enrichment: enrichmentSchema }))
      .min(1)
      .max(MAX_EVENTS_PER_MESSAGE),
  }),
  z.object({
    kind: z.literal('consent'),
    ...base,
    eventId: z.string(),
    consent: ConsentStateSchema,
    claimed: ConsentStateSchema.shape.categories.optional(),
    source: z.string().max(64),
    recordedAt: z.string(),
    chosenAt: z.string().optional(),
    gpc: z.boolean().optional(),
  }),
  z.object({
    kind: z.literal('profile'),
    ...base,
    version: z.number().int().nonnegative(),
    profile: z.looseObject({
      anonymousIds: z.array(z.string()),
      firstSeen: z.string(),
      lastSeen: z.string(),
    }),
  }),
  z.object({
    kind: z.literal('covisit'),
    siteId: z.string().min(1).max(64),
    from: z.string().min(1).max(128),
    to: z.string().min(1).max(128),
    at: z.string(),
  }),
  z.object({
    kind: z.literal('covisits'),
    siteId: z.string().min(1).max(64),
    pairs: z
      .array(
        z.object({
          from: z.string().min(1).max(128),
          to: z.string().min(1).max(128),
          at: z.string(),
        }),
      )
      // One request's pairs: far fewer than this (a batch holds at most LIMITS.maxBatchEvents events).
      .max(1000),
  }),
  z.object({
    kind: z.literal('erasure'),
    ...base,
    anonymousIds: z.array(z.string()),
    userId: z.string().optional(),
    requestedAt: z.string(),
    erasureId: z.string().regex(ULID_PATTERN).optional(),
    reason: z.enum(['request', 'retention']).optional(),
  }),
]);
