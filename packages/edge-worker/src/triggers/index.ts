/**
 * Real-time triggers, run by the ingest path after a person's ProfileDO has applied their
 * events. Rules are data (Directus collection `trigger_rules`, cached with the catalog):
 * "on `cart.item.added` of category X, recommend accessories and offer a personal promo".
 *
 * What a rule emits:
 * - `recommendation.triggered` (personalization, by the person's recorded choice as it
 *   stands today, `consentInForce`, as decide judges it): the accessories picked for this person
 *   (the decide path shows the same picks in a recommendations slot while the product is
 *   in the cart — see decide.ts, `triggeredAccessories`).
 * - `promo.offered` (marketing only): a unique code, its expiry and discount, counted
 *   against the rule's per-person cap in the person's ProfileDO (`recordOffer`), so a
 *   replayed or concurrent event can never exceed the cap.
 * Neither for a person in the holdout group (decide/holdout.ts): they are the control.
 */
import { type CustomerAction, consentInForce, isGranted, type JsonValue } from '@attune/shared-schema';
import type { CatalogIndex } from '../catalog/catalog-index.ts';
import { getCatalog } from '../catalog/index.ts';
import type { TriggerRule } from '../catalog/types.ts';
import { getConsentConfig } from '../config/consent-config.ts';
import { isPersonHeldOut } from '../decide/holdout.ts';
import { scoreCatalog } from '../decide/scorer.ts';
import { profileStub } from '../identity/index.ts';
import { EDGE_EVENT } from '../profile/edge-events.ts';
import type { ProfileSummary } from '../profile/types.ts';
import { newUlid } from '../profile/ulid.ts';

export interface TriggerInput {
  siteId: string;
  /** The person's new events, in order. */
  events: CustomerAction[];
  profile: ProfileSummary;
  /** Whether marketing is granted for this person (promos need it). */
  marketing: boolean;
  /** Of `events`, those that may earn a recommendation (their own consent grants personalization); all when absent. */
  recommendable?: ReadonlySet<CustomerAction>;
  /** Of `events`, those that may earn a promo (their own consent grants marketing); all when absent. */
  promotable?: ReadonlySet<CustomerAction>;
}

/** Accessories a rule recommends unless it says otherwise. */
const DEFAULT_RECOMMEND_LIMIT = 3;
const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** The product an event is about, as the catalog knows it (or as the event describes it). */
export function eventProduct(
  event: CustomerAction,
  catalog: CatalogIndex,
): { id: string; category?: string; tags: string[] } | undefined {
  const props = event.properties ?? {};
  const id = props.productId;
  if (typeof id !== 'string' || id === '') return undefined;
  const known = catalog.indexById.get(id);
  const product = known === undefined ? undefined : catalog.products[known];
  if (product) return { id, category: product.category, tags: product.tags };
  const tags = Array.isArray(props.tags) ? props.tags.filter((t): t is string => typeof t === 'string') : [];
  return { id, ...(typeof props.category === 'string' ? { category: props.category } : {}), tags };
}

/**
 * Events no rule fires on, whatever it names: a refund undoes a purchase, and a promo or
 * recommendation for it would reward the return (it is logged and takes the order back, no more).
 */
const NEVER_TRIGGERING: ReadonlySet<string> = new Set(['order.refunded']);

/** Whether a rule fires for an event. */
export function ruleMatches(rule: TriggerRule, event: CustomerAction, catalog: CatalogIndex): boolean {
  if (!rule.enabled || rule.on !== event.name || NEVER_TRIGGERING.has(event.name)) return false;
  const product = eventProduct(event, catalog);
  if (rule.when.category !== undefined && product?.category !== rule.when.category) return false;
  const wanted = rule.when.tags ?? [];
  if (wanted.length > 0 && !wanted.some((t) => product?.tags.includes(t))) return false;
  return true;
}

/** A unique, unguessable promo code: the rule's prefix and 8 random characters. */
export function promoCode(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let code = '';
  for (const b of bytes) code += CODE_ALPHABET.charAt(b % CODE_ALPHABET.length);
  return `${prefix}-${code}`;
}

/** Runs the site's trigger rules for events a person just sent; returns events to record (e.g. promo.offered). */
export async function runTriggers(env: Env, input: TriggerInput): Promise<CustomerAction[]> {
  const catalog = await getCatalog(env, input.siteId);
  if (catalog.triggerRules.length === 0) return [];
  // The person's choice as it stands today, as decide judges it: none if made under an
  // earlier policy version, and a category the marketer disabled grants nothing.
  const recorded = input.profile.consent;
  const personalization =
    recorded !== undefined &&
    isGranted(consentInForce(recorded, await getConsentConfig(env, input.siteId)), 'personalization');
  // A held-out person (decide's holdout: personalization granted, drawn into the holdout by
  // their first browser) gets the control experience here too: no accessories and no personal
  // code, which a Flow or a newsletter could otherwise send them. Lift would else compare two
  // treated groups. People without personalization are in no group, and keep their promos.
  if (personalization && isPersonHeldOut(env, input.profile.personKey, input.profile.anonymousIds[0]))
    return [];
  const out: CustomerAction[] = [];
  // A rule recommends once and offers once per call, each on the first matching event that
  // may earn it: a batch's events usually may earn both, so that is one event.
  const recommended = new Set<string>();
  const offered = new Set<string>();
  const accessoriesOf = new Map<string, string[]>();
  for (const event of input.events) {
    const mayRecommend = personalization && (input.recommendable?.has(event) ?? true);
    const mayOffer = input.marketing && (input.promotable?.has(event) ?? true);
    for (const rule of catalog.triggerRules) {
      const recommendNow = mayRecommend && !recommended.has(rule.id);
      const offerNow = mayOffer && !offered.has(rule.id);
      if (!(recommendNow || offerNow) || !ruleMatches(rule, event, catalog)) continue;
      if (recommendNow) recommended.add(rule.id);
      if (offerNow) offered.add(rule.id);
      const product = eventProduct(event, catalog);
      const base = {
        type: 'track' as const,
        anonymousId: event.anonymousId,
        ...(event.userId !== undefined ? { userId: event.userId } : {}),
        ...(event.sessionId !== undefined ? { sessionId: event.sessionId } : {}),
        schemaVersion: 1 as const,
      };
      let accessories = mayRecommend ? accessoriesOf.get(rule.id) : [];
      if (accessories === undefined) {
        accessories = rule.recommend ? recommendAccessories(catalog, rule, input.profile) : [];
        accessoriesOf.set(rule.id, accessories);
      }
      if (recommendNow && accessories.length > 0) {
        const now = new Date();
        out.push({
          ...base,
          id: newUlid(now.getTime()),
          name: EDGE_EVENT.recommendationTriggered,
          timestamp: now.toISOString(),
          properties: {
            rule: rule.id,
            trigger: { eventId: event.id, ...(product ? { productId: product.id } : {}) },
            items: accessories,
          },
        });
      }
      if (!rule.promo || !offerNow) continue;
      const now = new Date();
      const promo = {
        rule: rule.id,
        code: promoCode(rule.promo.codePrefix),
        discountPercent: rule.promo.discountPercent,
        expiresAt: now.getTime() + rule.promo.ttlHours * 3_600_000,
      };
      // The cap is enforced where the person's state lives, in order with their events; the
      // offer is kept there too, for decide to show in a promo slot.
      const granted = await profileStub(env, input.siteId, input.profile.personKey).recordOffer(
        rule.id,
        rule.promo.capPerPerson,
        promo,
      );
      if (!granted) continue;
      const properties: Record<string, JsonValue> = {
        code: promo.code,
        rule: rule.id,
        expiresAt: new Date(promo.expiresAt).toISOString(),
        discountPercent: promo.discountPercent,
        trigger: { eventId: event.id, ...(product ? { productId: product.id } : {}) },
      };
      if (accessories.length > 0) properties.items = accessories;
      out.push({
        ...base,
        id: newUlid(now.getTime()),
        name: EDGE_EVENT.promoOffered,
        timestamp: now.toISOString(),
        properties,
      });
    }
  }
  return out;
}

/** The rule's accessories, ranked for this person, never what they own or have in the cart. */
export function recommendAccessories(
  catalog: CatalogIndex,
  rule: TriggerRule,
  profile: ProfileSummary,
): string[] {
  const recommend = rule.recommend;
  if (!recommend) return [];
  return scoreCatalog(catalog, {
    interests: profile.interests,
    recentViews: [],
    cart: profile.cart,
    purchased: profile.purchased,
    limit: recommend.limit ?? DEFAULT_RECOMMEND_LIMIT,
    maxPerCategory: 0,
    restrictTo: {
      ...(recommend.categories ? { categories: recommend.categories } : {}),
      ...(recommend.tags ? { tags: recommend.tags } : {}),
    },
  }).map((s) => s.product.id);
}
