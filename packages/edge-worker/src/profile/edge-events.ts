/**
 * The events the Worker makes itself, never a person: the profile's `interest.shifted`,
 * the triggers' `recommendation.triggered` and `promo.offered`, decide's `decision.served`.
 * They go to the event log for reporting, but they are not something the person did: live,
 * none of them reaches a ProfileDO, so a replay of the log skips them (src/replay) to
 * rebuild the same profile. The names are the edge's alone: ingest refuses an event a
 * producer sends under one of them (src/ingest/pipeline.ts), so a name found in the log
 * says who made the event.
 */
import type { KnownEventName } from '@attune/shared-schema';

export const EDGE_EVENT = {
  interestShifted: 'interest.shifted',
  recommendationTriggered: 'recommendation.triggered',
  promoOffered: 'promo.offered' satisfies KnownEventName,
  decisionServed: 'decision.served' satisfies KnownEventName,
} as const;

const EDGE_EVENT_NAMES: ReadonlySet<string> = new Set(Object.values(EDGE_EVENT));

/** Whether an event of this name is one the Worker made (see EDGE_EVENT). */
export function isEdgeEvent(name: string): boolean {
  return EDGE_EVENT_NAMES.has(name);
}
