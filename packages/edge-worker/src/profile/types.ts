/**
 * The contract between the ingest path, ProfileDO and its readers (decide, triggers,
 * admin). Everything a reader may know about a person goes through `ProfileView`.
 */
import type { ConsentState, CustomerAction, Enrichment } from '@attune/shared-schema';

/** A person's key within a site: `anon:<anonymousId>` until verified, then `user:<userId>`. */
export type PersonKey = `anon:${string}` | `user:${string}`;

/** One action as the profile keeps it (the last 100). */
export interface RecentAction {
  id: string;
  name: string;
  at: string;
  productId?: string;
  category?: string;
}

/** A read-only snapshot of one person, as decide, triggers and admin access see it. */
export interface ProfileView {
  siteId: string;
  personKey: PersonKey;
  anonymousIds: string[];
  userId?: string;
  traits: Record<string, unknown>;
  /** Decayed interest scores, as of `asOf`: keys `category:<name>` and `tag:<name>`. */
  interests: Record<string, number>;
  segments: string[];
  counters: Record<string, number>;
  /** Newest first, at most 100. */
  recentActions: RecentAction[];
  /** Product ids currently in the cart (added minus removed, cleared by an order). */
  cart: string[];
  /** Product ids bought. */
  purchased: string[];
  consent?: ConsentState;
  /**
   * The id of the consent record `consent` comes from (its consent event's id), for what the
   * Worker queues on the strength of it (a decision served: Enrichment.consentId).
   */
  consentId?: string;
  /** Offers made by triggers: rule id → how many times, for per-person caps. */
  offers: Record<string, number>;
  /** The newest promo a trigger offered the person, while it is valid: what decide shows in a promo slot. */
  promo?: OfferedPromo;
  firstSeen: string;
  lastSeen: string;
  asOf: string;
}

/** A promo a trigger rule offered a person: its code, discount and end (ISO 8601 in a view, epoch ms in the state). */
export interface OfferedPromo<Time = string> {
  rule: string;
  code: string;
  discountPercent: number;
  expiresAt: Time;
}

/** A profile view without the recent actions: what the ingest path needs back from ProfileDO. */
export type ProfileSummary = Omit<ProfileView, 'recentActions'>;

/** An accepted event handed to a person's ProfileDO, with what the edge derived. */
export interface ProfileEventInput {
  event: CustomerAction;
  enrichment: Enrichment;
  /** Whether this event may build the profile (personalization granted). */
  personalization: boolean;
  /**
   * The normalized consent the request carried (GPC applied). Undefined when it carried
   * none (server-side producers): the person's recorded consent then decides.
   */
  consent?: ConsentState;
  /**
   * The person an expired signature named (`user:<id>`; identity/index.ts): the event carries
   * no user id any more, and may reach that person only through a browser already linked to
   * them. Any other person it would reach (the browser's own profile, or another account
   * that signed in on it) is refused it (IngestResult.unlinked).
   */
  claimedPerson?: PersonKey;
  /**
   * `Sec-GPC: 1` on the request that carried the event; undefined where that is not known
   * (a replay from the event log). A consent record keeps it as the reason marketing is off.
   */
  gpc?: boolean;
}
