/**
 * Which `decision.served` events are logged: the first of each person, slot and variant
 * (with the flags lift reads: holdout, eligible, personalized) within SERVED_MEMO_MS, as this
 * isolate saw it. A page that asks again, a reload, or a script that asks in a loop repeats
 * an exposure that is already in the log; logging each repeat let anyone who knows an
 * anonymous id with analytics consent write to the event log without limit.
 *
 * In isolate memory, not the ProfileDO: the profile is read before the decision and read
 * only (a write there would be a second Durable Object call per decide, and an object left
 * behind for every made-up id). That is enough because lift counts people, not exposures:
 * a person's group is read from their first exposure, and a conversion needs only some
 * exposure before it within the attribution window (lift.ts). A repeat dropped here follows
 * one that was logged, so no count changes; one that another isolate logs again is a
 * harmless duplicate, as every repeat was before. What it bounds: with the per-IP limit and
 * decisions only for real slots, one isolate logs at most one event per person and slot
 * variant per window, however often it is asked.
 */
import type { EventMessage } from '@attune/shared-schema';

/** How long an exposure is not logged again. */
export const SERVED_MEMO_MS = 10 * 60_000;
/** Exposures remembered per isolate; the oldest are forgotten first (a forgotten one is logged again). */
export const SERVED_MEMO_MAX = 20_000;

/** Exposure key → when it was logged (epoch ms); insertion order is time order. */
const memo = new Map<string, number>();

function exposureKey(message: EventMessage): string {
  const p = message.event.properties ?? {};
  return JSON.stringify([
    message.siteId,
    message.personId,
    p.slot,
    p.variant,
    p.holdout,
    p.eligible,
    p.personalized,
    p.experiment,
  ]);
}

/**
 * The events of `served` whose exposure was not logged within the window, remembered as
 * logged from `now` on. Called when the events are handed to the queue, so concurrent
 * requests of the same exposure log it once.
 */
export function firstServings(served: EventMessage[], now: number = Date.now()): EventMessage[] {
  // Forget what the window has passed (the oldest first: entries are kept in time order).
  for (const [key, at] of memo) {
    if (now - at < SERVED_MEMO_MS && memo.size < SERVED_MEMO_MAX) break;
    memo.delete(key);
  }
  const first: EventMessage[] = [];
  for (const message of served) {
    const key = exposureKey(message);
    const at = memo.get(key);
    if (at !== undefined && now - at < SERVED_MEMO_MS) continue;
    memo.delete(key);
    memo.set(key, now);
    first.push(message);
  }
  return first;
}

/** Forgets every remembered exposure (tests). */
export function forgetServings(): void {
  memo.clear();
}
