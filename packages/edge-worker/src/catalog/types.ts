/**
 * Catalog, slot content and trigger rules as the edge sees them. Directus is the source
 * (collections `products`, `slot_content`, `trigger_rules`); tests use a fixture.
 */

export interface Product {
  id: string;
  slug: string;
  title: string;
  category: string;
  tags: string[];
  price: number;
  currency: string;
  image: string;
  stock: number;
  /** Popularity prior, 0..1 (e.g. normalized sales or views). */
  popularity: number;
  /** The site whose catalog it is (Directus `site_id`); absent: every site's. */
  siteId?: string;
}

/** A banner variant or promo a marketer can target at interests or segments. */
export interface SlotVariant {
  id: string;
  /** The slot it fills, e.g. `hero`, `recommendations`, `promo`. */
  slot: string;
  kind: 'banner' | 'promo' | 'recommendations';
  title: string;
  body: string;
  image?: string;
  href?: string;
  /** Interest keys it targets (`category:outdoor`); empty = untargeted. */
  targetInterests: string[];
  /** Segments it targets; empty = untargeted. */
  targetSegments: string[];
  /** The default variant of its slot (served on no consent, holdout, or no match). */
  isDefault: boolean;
  priority: number;
  /** The site whose pages it is for (Directus `site_id`); absent: every site's. */
  siteId?: string;
}

/** A real-time trigger, editable by marketers as data. */
export interface TriggerRule {
  id: string;
  /** The site whose events it fires on (Directus `site_id`); absent: every site's. */
  siteId?: string;
  enabled: boolean;
  /** The event that fires it, e.g. `cart.item.added`. */
  on: string;
  /** Conditions on the event's product, e.g. `{ category: "outdoor" }`. */
  when: { category?: string; tags?: string[] };
  /** What it does: recommend accessories (by category/tags) and/or offer a promo. */
  recommend?: { categories?: string[]; tags?: string[]; limit?: number };
  promo?: {
    codePrefix: string;
    discountPercent: number;
    ttlHours: number;
    capPerPerson: number;
    /**
     * The promo slot's copy while the offer runs, in the shop's language: `{discount}` and
     * `{until}` (its last day, YYYY-MM-DD) are filled in. Absent: "{discount} % off" and
     * "Your personal code, valid until {until}."
     */
    title?: string;
    body?: string;
  };
}
