/**
 * The decide contract: `GET /v1/decide?slots=hero,recommendations&writeKey=…&anonymousId=…`
 * (plus `userId` and `userIdSignature` cross-origin, or the first-party cookie in
 * edge-proxy mode) returns the chosen content per slot, each with a reason.
 */

/** A product as a recommendation shows it. */
export interface ProductCard {
  id: string;
  slug: string;
  title: string;
  category: string;
  price: number;
  currency: string;
  image: string;
  /** Why this product, in a few words: "because you viewed Trail Jacket". */
  reason: string;
}

/** The content chosen for one slot. */
export interface SlotDecision {
  slot: string;
  /** Idempotency key of the `decision.served` event recorded for it. */
  decisionId: string;
  /** The variant served (a slot_content id, or `default`). */
  variant: string;
  kind: 'banner' | 'promo' | 'recommendations';
  title?: string;
  body?: string;
  image?: string;
  href?: string;
  items?: ProductCard[];
  /** A promo code, when a marketing trigger offered one. */
  promoCode?: string;
  promoExpiresAt?: string;
  /** Why this content: "interest in outdoor", "default: personalization not granted". */
  reason: string;
  /** The person is in the holdout group and was served the default on purpose. */
  holdout: boolean;
}

export interface DecideResponse {
  /** Whether any content was personalized (false without personalization consent). */
  personalized: boolean;
  decisions: Record<string, SlotDecision>;
}
