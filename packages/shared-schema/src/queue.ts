/**
 * Messages on the EVENTS queue, from the Worker (producer) to the Directus sync
 * (consumer). Each message is self-describing (`kind`) and carries its own idempotency
 * key, so redelivery never duplicates anything downstream.
 */
import { z } from 'zod';
import type { ConsentState, Purpose } from './constants.ts';
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

/** A consent change, with proof: when, under which policy, from where. */
export interface ConsentMessage {
  kind: 'consent';
  siteId: string;
  personId: string;
  eventId: string;
  consent: ConsentState;
  source: string;
  recordedAt: string;
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

/** A person erased: delete their rows downstream and keep only proof that it happened. */
export interface ErasureMessage {
  kind: 'erasure';
  siteId: string;
  personId: string;
  anonymousIds: string[];
  userId?: string;
  requestedAt: string;
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
  | ConsentMessage
  | ProfileMessage
  | ErasureMessage
  | CovisitMessage
  | CovisitsMessage;

const personId = z.string().min(1).max(300);
const base = { siteId: z.string().min(1).max(64), personId, traceparent: z.string().max(128).optional() };

/** Validates a queue message on the consumer side, so a poison message is named, not retried forever. */
export const QueueMessageSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('event'),
    ...base,
    event: CustomerActionSchema,
    enrichment: z.looseObject({ receivedAt: z.string(), correctedTimestamp: z.string() }),
    purposes: z.array(z.enum(['analytics', 'personalization', 'marketing'])),
  }),
  z.object({
    kind: z.literal('consent'),
    ...base,
    eventId: z.string(),
    consent: ConsentStateSchema,
    source: z.string().max(64),
    recordedAt: z.string(),
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
  }),
]);
