/**
 * The events the Worker makes itself, never a person: the profile's `interest.shifted`,
 * the triggers' `recommendation.triggered` and `promo.offered`, decide's `decision.served`.
 * They go to the event log for reporting, but they are not something the person did: live,
 * none of them reaches a ProfileDO, so a replay of the log skips them (src/replay) to
 * rebuild the same profile. The names are the edge's alone: ingest refuses an event a
 * producer sends under one of them (src/ingest/pipeline.ts), so a name found in the log
 * says who made the event.
 */
import { EDGE_EVENT_NAMES, type EdgeEventName, type KnownEventName } from '@attune/shared-schema';

export const EDGE_EVENT = {
  interestShifted: 'interest.shifted',
  recommendationTriggered: 'recommendation.triggered',
  promoOffered: 'promo.offered' satisfies KnownEventName,
  decisionServed: 'decision.served' satisfies KnownEventName,
} as const satisfies Record<string, EdgeEventName>;

const EDGE_NAMES: ReadonlySet<string> = new Set(EDGE_EVENT_NAMES);

/** Whether an event of this name is one the Worker made (shared-schema's EDGE_EVENT_NAMES). */
export function isEdgeEvent(name: string): boolean {
  return EDGE_NAMES.has(name);
}
