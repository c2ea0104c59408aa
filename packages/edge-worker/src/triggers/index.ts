/**
 * Real-time triggers, run by the ingest path after a person's ProfileDO has applied
 * their events. Until the personalization work lands, no rules run.
 */
import type { CustomerAction } from '@attune/shared-schema';
import type { ProfileView } from '../profile/types.ts';

export interface TriggerInput {
  siteId: string;
  events: CustomerAction[];
  profile: ProfileView;
  /** Whether marketing is granted for this person (promos need it). */
  marketing: boolean;
}

/** Runs the site's trigger rules for events a person just sent; returns events to record (e.g. promo.offered). */
export async function runTriggers(_env: Env, _input: TriggerInput): Promise<CustomerAction[]> {
  return [];
}
