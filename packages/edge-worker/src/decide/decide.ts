/**
 * One decision for one person and a set of slots: reads the person's profile, the catalog
 * and the site's consent configuration (each bounded by the decision budget), checks
 * consent and the holdout, scores the catalog, chooses a banner/promo variant or
 * recommended products per slot, and returns the `decision.served` events to record
 * (analytics purpose only) so lift can be measured. Defaults — the marketer's default
 * variant, popular products — whenever personalization is not granted, the person is held
 * out, or anything upstream is slow or failing.
 */
import {
  applyGpc,
  type ConsentConfig,
  type ConsentState,
  type CustomerAction,
  consentInForce,
  type DecideResponse,
  type EventMessage,
  isGranted,
  type ProductCard,
  type SlotDecision,
} from '@attune/shared-schema';
import { withinBudget } from '../budget/index.ts';
import type { CatalogIndex } from '../catalog/catalog-index.ts';
import { getCatalog, lastCatalog } from '../catalog/index.ts';
import type { Product, SlotVariant } from '../catalog/types.ts';
import { getConsentConfig, lastConsentConfig } from '../config/consent-config.ts';
import { profileStub, userIdOf } from '../identity/index.ts';
import { EDGE_EVENT } from '../profile/edge-events.ts';
import type { PersonKey, ProfileView } from '../profile/types.ts';
import { newUlid } from '../profile/ulid.ts';
import { readCovisits } from './covisitation.ts';
import { DEFAULT_EXPERIMENT, isPersonHeldOut } from './holdout.ts';
import { type CovisitCounts, popularityPick, scoreCatalog } from './scorer.ts';

/** Products per recommendations slot, and at most this many from one category. */
export const RECOMMENDATION_LIMIT = 4;
export const MAX_PER_CATEGORY = 2;
export const MAX_SLOTS = 10;
/**
 * The built-in slot: recommendations from the scorer, with or without content in Directus.
 * Any other slot is decided only from its content (a marketer may give another slot a
 * `recommendations` variant). A name that merely starts with `recommendations` is not a
 * slot: each made-up one was decided, and logged, as another slot.
 */
export const RECOMMENDATIONS_SLOT = 'recommendations';

export interface DecideInput {
  siteId: string;
  personKey: PersonKey;
  /** The browser's anonymous id, when known (recorded on `decision.served`). */
  anonymousId?: string;
  slots: string[];
  /** The product on screen, if any: excluded from and seeding its recommendations. */
  productId?: string;
  /** A consent state the browser sent (first-party cookie): it can only take purposes away. */
  browserConsent?: ConsentState;
  /** `Sec-GPC: 1` on the request: marketing is off, whatever the profile records. */
  gpc?: boolean;
  budgetMs: number;
}

export interface DecideOutcome {
  response: DecideResponse;
  /** `decision.served` events to queue (empty without analytics consent). */
  served: EventMessage[];
}

/**
 * The catalog, waited for at most its share (60 %) of a decision budget. A catalog still
 * loading (a cold isolate, or just after the webhook invalidated it: KV and up to 5 s per
 * Directus collection) gives way to the last one this isolate held, else an empty one
 * (defaults); the load goes on in the request's waitUntil. Decide and the page proxy both
 * read it this way, so a page is personalized from the same catalog `/v1/decide` answers from.
 */
export function catalogWithinBudget(env: Env, siteId: string, budgetMs: number): Promise<CatalogIndex> {
  return withinBudget(getCatalog(env, siteId), budgetMs * 0.6, lastCatalog(siteId));
}

/** The person's profile, or null when there is none, it is unreachable, or it is too slow. */
export async function readProfile(
  env: Env,
  siteId: string,
  personKey: PersonKey,
  timeoutMs: number,
): Promise<ProfileView | null> {
  if (personKey === 'anon:') return null;
  return withinBudget(profileStub(env, siteId, personKey).view(), timeoutMs, null);
}

/** What a decision needs, read once per request; slots are then decided from it without I/O. */
export interface PreparedDecision {
  catalog: CatalogIndex;
  ctx: SlotContext;
}

/**
 * Reads everything a decision needs — profile, catalog, "viewed next" counts — within the
 * budget. The edge proxy runs this while the origin is still answering.
 */
export async function prepareDecision(env: Env, input: DecideInput): Promise<PreparedDecision> {
  const started = Date.now();
  // The catalog and the consent configuration are in isolate memory almost always; on a cold
  // isolate, or just after the webhook invalidated them, they wait on KV and Directus (up to
  // 5 s a read), so they are bounded like the profile (see catalogWithinBudget). A late
  // configuration is the one held for the site unless it is stale (else none: nothing
  // granted); its load goes on in the request's waitUntil.
  const catalogRead = catalogWithinBudget(env, input.siteId, input.budgetMs);
  // The on-screen product's "viewed next" counts are aggregate (no person in them): read
  // them alongside the profile rather than after it — only for a product of the catalog.
  // Any caller can name any productId: each made-up one cost a shard read, and filled (then
  // emptied) the isolate's co-visit cache.
  const { productId } = input;
  const onScreen =
    productId !== undefined
      ? catalogRead.then((catalog): Promise<CovisitCounts> | CovisitCounts =>
          catalog.indexById.has(productId)
            ? readCovisits(env, input.siteId, [productId], input.budgetMs * 0.5 - (Date.now() - started))
            : new Map(),
        )
      : Promise.resolve<CovisitCounts>(new Map());
  const [profile, catalog, config, current] = await Promise.all([
    readProfile(env, input.siteId, input.personKey, input.budgetMs * 0.6),
    catalogRead,
    withinBudget<ConsentConfig | undefined>(
      getConsentConfig(env, input.siteId),
      input.budgetMs * 0.6,
      lastConsentConfig(input.siteId),
    ),
    onScreen,
  ]);
  // The profile follows an anonymous id to the person it was merged into.
  const personKey = profile?.personKey ?? input.personKey;
  // A decision is made now, under the policy in force: a choice recorded under another
  // policy version no longer counts (the SDK asks the person again and sends nothing until
  // they answer), and a choice grants only what the site offers now (a category a marketer
  // disabled since is off, as the ingest path treats it).
  const consent = profile?.consent && config ? consentInForce(profile.consent, config) : undefined;
  const personalization =
    isGranted(consent, 'personalization') &&
    (input.browserConsent === undefined || isGranted(input.browserConsent, 'personalization'));
  const holdout = personalization && isPersonHeldOut(env, personKey, profile?.anonymousIds[0]);
  let covisits: CovisitCounts = personalization && !holdout ? current : new Map();
  if (profile && personalization && !holdout) {
    // Views the person sent themselves: only products of the catalog are looked up.
    const seeds = recentViews(profile)
      .filter((id) => catalog.indexById.has(id))
      .slice(0, 4);
    const left = input.budgetMs - (Date.now() - started);
    if (seeds.length > 0 && left > 2) {
      const recent = await readCovisits(env, input.siteId, seeds, left * 0.5);
      covisits = new Map([...recent, ...current]);
    }
  }
  const analytics =
    isGranted(consent, 'analytics') &&
    (input.browserConsent === undefined || isGranted(input.browserConsent, 'analytics'));
  return {
    catalog,
    ctx: {
      ...input,
      personKey,
      profile: personalization ? profile : null,
      consent,
      ...(consent !== undefined && profile?.consentId !== undefined && { consentId: profile.consentId }),
      personalization,
      holdout,
      covisits,
      analytics,
      anonymousId: recordedBrowser(input, profile),
    },
  };
}

/**
 * The browser a decision is recorded under (`decision.served`'s anonymousId): the caller's
 * own when it is the person asked about or one of the person's browsers, else the person's
 * first. A signed-in caller may name any anonymousId, and anyone holding a person's
 * signature could have the log say another browser signed in as them, which lift takes as
 * that browser's anonymous events being theirs (lift-report.ts, joinedAtSignIn).
 */
function recordedBrowser(input: DecideInput, profile: ProfileView | null): string | undefined {
  const named = input.anonymousId;
  if (named !== undefined && (input.personKey === `anon:${named}` || profile?.anonymousIds.includes(named)))
    return named;
  return profile?.anonymousIds[0];
}

/** `/products/<slug>` (the shop's product pages) → the product id, so a page decides in context. */
export function productFromPath(pathname: string, catalog: CatalogIndex): string | undefined {
  const match = /^\/products?\/([^/]+)\/?$/.exec(pathname);
  if (!match?.[1]) return undefined;
  let slug: string;
  try {
    slug = decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
  const i = catalog.indexBySlug.get(slug);
  return i === undefined ? undefined : catalog.products[i]?.id;
}

/** Decides every slot for a person: the whole path of `GET /v1/decide`. */
export async function decide(env: Env, input: DecideInput): Promise<DecideOutcome> {
  const { catalog, ctx } = await prepareDecision(env, input);
  return decideSlots(catalog, ctx);
}

/** Product ids the person viewed, newest first. */
export function recentViews(profile: ProfileView): string[] {
  const out: string[] = [];
  for (const a of profile.recentActions) {
    if (a.name === 'product.viewed' && a.productId !== undefined && !out.includes(a.productId))
      out.push(a.productId);
  }
  return out;
}

export interface SlotContext extends DecideInput {
  /** The profile, only when personalization is granted. */
  profile: ProfileView | null;
  /**
   * The person's consent as their profile records it, normalized against the site's
   * current categories (none: nothing granted). GPC is not applied here: see `gpc`.
   */
  consent: ConsentState | undefined;
  /** The id of the consent record `consent` comes from: the choice its `decision.served` events were made under. */
  consentId?: string;
  personalization: boolean;
  holdout: boolean;
  covisits: CovisitCounts;
  analytics: boolean;
}

/** How the decisions reach the person. */
export interface ServeOptions {
  /**
   * Whether a decision reaches the person, so that it is logged as an exposure: on
   * `/v1/decide` every decision answered does (the page shows it); the edge proxy fills a
   * slot only with a decision that renders (rewrite/render.ts), and keeps the shop's content
   * otherwise.
   */
  shown?: (decision: SlotDecision) => boolean;
}

/**
 * The pure part of a decision (no I/O): exported for tests and benchmarks. Its
 * `decision.served` events log a treated person's exposure on each slot shown to them, and
 * a held-out person's on each slot a treated person with the same profile would have been
 * shown (the decision they would have had, made for the log only): the holdout then counts
 * the same kind of people as the treatment. Logged from their own defaults instead, the
 * holdout lost the people only targeted content reaches (a slot with targeted variants
 * alone) and gained those whose treatment would have shown nothing (no products left to
 * recommend), and lift compared unlike groups.
 */
export function decideSlots(
  catalog: CatalogIndex,
  ctx: SlotContext,
  options: ServeOptions = {},
): DecideOutcome {
  const shown = options.shown ?? (() => true);
  const { personalized, decisions } = slotDecisions(catalog, ctx);
  const response = { personalized, decisions };
  if (!ctx.analytics) return { response, served: [] };
  const now = new Date().toISOString();
  if (!ctx.holdout) {
    const served = Object.values(decisions)
      .filter(shown)
      .map((d) => servedEvent(ctx, d, personalized, now));
    return { response, served };
  }
  const served: EventMessage[] = [];
  for (const [slot, treated] of Object.entries(
    slotDecisions(catalog, { ...ctx, holdout: false }).decisions,
  )) {
    if (!shown(treated)) continue;
    // A slot with targeted content alone has no decision of the holdout's own: the page kept its content.
    const own: SlotDecision = decisions[slot] ?? {
      slot,
      decisionId: newUlid(),
      variant: 'default',
      kind: treated.kind,
      reason: 'default: holdout group',
      holdout: true,
    };
    served.push(servedEvent(ctx, own, personalized, now));
  }
  return { response, served };
}

/** Every slot's decision for the person (the content each slot gets), without logging any. */
function slotDecisions(
  catalog: CatalogIndex,
  ctx: SlotContext,
): { personalized: boolean; decisions: Record<string, SlotDecision> } {
  const decisions: Record<string, SlotDecision> = {};
  const personalized = ctx.personalization && !ctx.holdout && ctx.profile !== null;
  const defaultReason = !ctx.personalization
    ? 'default: personalization not granted'
    : ctx.holdout
      ? 'default: holdout group'
      : 'default';
  // A promo chosen for the person is marketing (a promotion), not only personalization.
  const marketing =
    ctx.consent !== undefined &&
    isGranted(applyGpc(ctx.consent, ctx.gpc === true), 'marketing') &&
    (ctx.browserConsent === undefined || isGranted(ctx.browserConsent, 'marketing'));
  for (const slot of new Set(ctx.slots)) {
    const variants = catalog.slotContent.get(slot) ?? [];
    const fallback = defaultVariant(variants);
    // What kind of slot it is: its default's kind, or its first variant's when all are targeted.
    const kind = (fallback ?? variants[0])?.kind;
    const isRecommendations =
      kind === 'recommendations' || (variants.length === 0 && slot === RECOMMENDATIONS_SLOT);
    // A slot with no content is not a slot (the page keeps its own content): no decision, no event.
    if (variants.length === 0 && !isRecommendations) continue;
    const decisionId = newUlid();
    let decision: SlotDecision;
    // A promo a trigger offered the person, when it may fill this slot: a promo slot, under marketing.
    const promo = kind === 'promo' && personalized && marketing ? ctx.profile?.promo : undefined;
    if (isRecommendations) {
      const profile = personalized ? ctx.profile : null;
      const triggered = profile ? triggeredAccessories(catalog, profile, ctx.productId) : [];
      const items =
        triggered.length > 0
          ? triggered
          : profile
            ? scoreCatalog(catalog, {
                interests: profile.interests,
                recentViews: recentViews(profile),
                cart: profile.cart,
                purchased: profile.purchased,
                covisits: ctx.covisits,
                currentProductId: ctx.productId,
                limit: RECOMMENDATION_LIMIT,
                maxPerCategory: MAX_PER_CATEGORY,
              }).map((s) => card(s.product, s.reason))
            : popularityPick(catalog, RECOMMENDATION_LIMIT + 1)
                .filter((p) => p.id !== ctx.productId)
                .slice(0, RECOMMENDATION_LIMIT)
                .map((p) => card(p, 'popular right now'));
      const personal = profile !== null && items.some((i) => i.reason !== 'popular right now');
      decision = {
        slot,
        decisionId,
        variant: personal ? 'personalized' : fallback ? fallback.id : 'default',
        kind: 'recommendations',
        title: personal ? 'Picked for you' : (fallback?.title ?? 'Popular right now'),
        items,
        reason: personal
          ? 'your interests and recent views'
          : profile
            ? 'default: no signals yet'
            : defaultReason,
        holdout: ctx.holdout,
      };
    } else if (promo !== undefined) {
      // A promo a trigger offered the person leads a promo slot while it runs: the code was
      // theirs (promo.offered) but reached no page before. Its copy is the rule's as it is now
      // (a marketer's edit reaches live offers), else a plain default.
      const copy = catalog.triggerRules.find((r) => r.id === promo.rule)?.promo;
      const fill = (text: string) =>
        text
          .replaceAll('{discount}', String(promo.discountPercent))
          .replaceAll('{until}', promo.expiresAt.slice(0, 10));
      decision = {
        slot,
        decisionId,
        variant: `offer:${promo.rule}`,
        kind: 'promo',
        title: fill(copy?.title ?? '{discount} % off'),
        body: fill(copy?.body ?? 'Your personal code, valid until {until}.'),
        promoCode: promo.code,
        reason: 'a promotion offered to you',
        holdout: ctx.holdout,
      };
    } else {
      // Without marketing, a promo slot keeps its untargeted default.
      const candidates = marketing ? variants : variants.filter((v) => v.kind !== 'promo');
      const chosen = personalized && ctx.profile ? targetedVariant(candidates, ctx.profile) : undefined;
      const variant = chosen?.variant ?? fallback;
      // Only targeted content and none for this person (or no consent to target them): the
      // page keeps its own content, and nothing was served.
      if (variant === undefined) continue;
      const withheld =
        !chosen && personalized && ctx.profile && candidates.length < variants.length
          ? targetedVariant(variants, ctx.profile) !== undefined
          : false;
      decision = {
        slot,
        decisionId,
        variant: variant.id,
        kind: variant.kind,
        title: variant.title,
        body: variant.body,
        ...(variant.image !== undefined ? { image: variant.image } : {}),
        ...(variant.href !== undefined ? { href: variant.href } : {}),
        reason:
          chosen?.reason ??
          (!personalized
            ? defaultReason
            : withheld
              ? 'default: marketing not granted'
              : 'default: no matching content'),
        holdout: ctx.holdout,
      };
    }
    decisions[slot] = decision;
  }
  return { personalized, decisions };
}

/**
 * A slot's default: its untargeted variant marked default, else its untargeted one first by
 * priority. Never a targeted one, even marked default: shown by default it would reach
 * everyone, people who refused personalization or marketing included, as if chosen for them
 * (a marketer who deleted the seeded default left "20 % off for buyers" on every page).
 */
function defaultVariant(variants: SlotVariant[]): SlotVariant | undefined {
  const untargeted = variants.filter((v) => v.targetInterests.length === 0 && v.targetSegments.length === 0);
  return untargeted.find((v) => v.isDefault) ?? [...untargeted].sort((a, b) => a.priority - b.priority)[0];
}

/**
 * While a product that fires a trigger rule (e.g. an outdoor jacket) is in the cart, the
 * rule's accessories lead the recommendations — the same picks the trigger announced —
 * except the product on screen (an accessory's own page must not recommend it).
 */
export function triggeredAccessories(
  catalog: CatalogIndex,
  profile: ProfileView,
  currentProductId?: string,
): ProductCard[] {
  if (profile.cart.length === 0 || catalog.triggerRules.length === 0) return [];
  const inCart = new Set(profile.cart);
  const newestFirst = [
    ...profile.recentActions
      .filter((a) => a.name === 'cart.item.added' && a.productId !== undefined && inCart.has(a.productId))
      .map((a) => a.productId as string),
    ...profile.cart,
  ];
  for (const productId of new Set(newestFirst)) {
    const i = catalog.indexById.get(productId);
    const product = i === undefined ? undefined : catalog.products[i];
    if (!product) continue;
    const rule = catalog.triggerRules.find(
      (r) =>
        r.enabled &&
        r.on === 'cart.item.added' &&
        r.recommend !== undefined &&
        (r.when.category === undefined || r.when.category === product.category) &&
        ((r.when.tags ?? []).length === 0 || (r.when.tags ?? []).some((t) => product.tags.includes(t))),
    );
    if (!rule?.recommend) continue;
    const picks = scoreCatalog(catalog, {
      interests: profile.interests,
      recentViews: [],
      cart: profile.cart,
      purchased: profile.purchased,
      ...(currentProductId !== undefined ? { currentProductId } : {}),
      limit: Math.min(rule.recommend.limit ?? RECOMMENDATION_LIMIT, RECOMMENDATION_LIMIT),
      maxPerCategory: 0,
      restrictTo: {
        ...(rule.recommend.categories ? { categories: rule.recommend.categories } : {}),
        ...(rule.recommend.tags ? { tags: rule.recommend.tags } : {}),
      },
    });
    if (picks.length > 0) return picks.map((s) => card(s.product, `goes with your ${product.title}`));
  }
  return [];
}

/** The targeted variant that best matches the person: interest strength, then segment, then priority. */
export function targetedVariant(
  variants: SlotVariant[],
  profile: ProfileView,
): { variant: SlotVariant; reason: string } | undefined {
  let maxInterest = 0;
  for (const key in profile.interests) maxInterest = Math.max(maxInterest, profile.interests[key] ?? 0);
  let best: { variant: SlotVariant; reason: string; score: number } | undefined;
  for (const v of variants) {
    // A targeted variant marked default is still targeted (never a default: see defaultVariant).
    if (v.targetInterests.length === 0 && v.targetSegments.length === 0) continue;
    let score = 0;
    let reason = '';
    let strongest = 0;
    for (const key of v.targetInterests) {
      const value = profile.interests[key] ?? 0;
      if (value > 0 && maxInterest > 0) {
        score += value / maxInterest;
        if (value > strongest) {
          strongest = value;
          reason = `interest in ${key.slice(key.indexOf(':') + 1)}`;
        }
      }
    }
    const segment = v.targetSegments.find((s) => profile.segments.includes(s));
    if (segment !== undefined) {
      score += 1;
      reason = `segment ${segment}`;
    }
    if (score <= 0) continue;
    if (
      !best ||
      score > best.score ||
      (score === best.score && v.priority > best.variant.priority) ||
      (score === best.score && v.priority === best.variant.priority && v.id < best.variant.id)
    )
      best = { variant: v, reason, score };
  }
  return best && { variant: best.variant, reason: best.reason };
}

function card(p: Product, reason: string): ProductCard {
  return {
    id: p.id,
    slug: p.slug,
    title: p.title,
    category: p.category,
    price: p.price,
    currency: p.currency,
    image: p.image,
    reason,
  };
}

/**
 * The `decision.served` event of one slot decision. Conversions are attributed to it by
 * person and time (see README, "Measuring lift"): the decision id travels to the page
 * (`data-attune-decision`) so the SDK can also attach it to a click-through.
 */
function servedEvent(ctx: SlotContext, d: SlotDecision, personalized: boolean, now: string): EventMessage {
  const userId = userIdOf(ctx.personKey);
  const event: CustomerAction = {
    id: d.decisionId,
    type: 'track',
    name: EDGE_EVENT.decisionServed,
    timestamp: now,
    anonymousId: ctx.anonymousId ?? ctx.personKey.slice(ctx.personKey.indexOf(':') + 1),
    ...(userId !== undefined ? { userId } : {}),
    properties: {
      decisionId: d.decisionId,
      slot: d.slot,
      variant: d.variant,
      holdout: d.holdout,
      experiment: DEFAULT_EXPERIMENT,
      personalized,
      eligible: ctx.personalization,
      items: (d.items ?? []).map((i) => i.id),
    },
    schemaVersion: 1,
  };
  return {
    kind: 'event',
    siteId: ctx.siteId,
    personId: ctx.personKey,
    event,
    enrichment: {
      receivedAt: now,
      correctedTimestamp: now,
      ...(ctx.consentId !== undefined && { consentId: ctx.consentId }),
    },
    purposes: ['analytics'],
  };
}
