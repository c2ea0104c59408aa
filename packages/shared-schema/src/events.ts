/**
 * The registry of known event names and their typed properties. Known names are
 * validated against their schema (extra properties are kept); unknown dotted names are
 * allowed with free properties, so a producer can ship a new event without a deploy here.
 */
import { z } from 'zod';
import type { KnownEventName } from './constants.ts';

const id = z.string().min(1).max(128);
/**
 * An amount, bounded: a revenue counter adds them up, and one absurd total (1e308) would make
 * it Infinity, which JSON stores as null. A trillion in any currency is no one order.
 */
const money = z.number().nonnegative().max(1e12, 'expected an amount of at most 1e12');
const currency = z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 currency code like "EUR"');
const text = z.string().max(512);

/** A product as events describe it (Segment's e-commerce spec, camel-cased). */
export const ProductRef = z.looseObject({
  productId: id,
  sku: id.optional(),
  name: text.optional(),
  category: text.optional(),
  tags: z.array(z.string().max(64)).max(50).optional(),
  price: money.optional(),
  currency: currency.optional(),
  quantity: z.number().int().positive().optional(),
  position: z.number().int().nonnegative().optional(),
});

const OrderLine = ProductRef;

export const EVENT_PROPERTIES = {
  'page.viewed': z.looseObject({
    path: z.string().max(2048).optional(),
    title: text.optional(),
  }),
  'product.viewed': ProductRef,
  'product.list_viewed': z.looseObject({
    listId: id.optional(),
    category: text.optional(),
    products: z.array(ProductRef).max(100).optional(),
  }),
  'search.performed': z.looseObject({
    query: z.string().max(256),
    results: z.number().int().nonnegative().optional(),
  }),
  'cart.item.added': ProductRef,
  'cart.item.removed': ProductRef,
  'checkout.started': z.looseObject({
    cartId: id.optional(),
    value: money.optional(),
    currency: currency.optional(),
    products: z.array(OrderLine).max(100).optional(),
  }),
  'order.completed': z.looseObject({
    orderId: id,
    total: money,
    currency: currency.optional(),
    discount: money.optional(),
    coupon: z.string().max(64).optional(),
    products: z.array(OrderLine).max(100).optional(),
  }),
  // Undoes what its order.completed counted (a return, a cancellation): `total` is the amount
  // refunded; without it the whole order is. It teaches no interest and triggers nothing.
  'order.refunded': z.looseObject({
    orderId: id,
    // The refund's own id in the shop's system: several partial refunds of one order (items
    // returned one at a time) are each taken once by it; without it an order takes one refund.
    refundId: id.optional(),
    total: money.optional(),
    currency: currency.optional(),
    products: z.array(OrderLine).max(100).optional(),
    // Free text ("cancelled", "refunded", "returned", a backend's own code): shops name them differently.
    reason: z.string().max(64).optional(),
  }),
  'user.signed_in': z.looseObject({
    method: z.string().max(64).optional(),
  }),
  'form.submitted': z.looseObject({
    formId: id,
    fields: z.array(z.string().max(128)).max(100).optional(),
  }),
  'consent.updated': z.looseObject({
    categories: z.record(z.string().max(64), z.boolean()),
    policyVersion: z.string().min(1).max(64),
    // How the choice was made: the SDK's own sources (banner, preferences, gpc, tcf, api, server)
    // or a site's label ("cookie-banner"): recorded as given, never a reason to lose the proof.
    source: z.string().min(1).max(64).optional(),
  }),
  'decision.served': z.looseObject({
    decisionId: id,
    slot: z.string().max(64),
    variant: z.string().max(128),
    holdout: z.boolean(),
    experiment: z.string().max(64).optional(),
    items: z.array(id).max(100).optional(),
  }),
  'promo.offered': z.looseObject({
    code: z.string().max(64),
    rule: id,
    expiresAt: z.iso.datetime({ offset: true }),
    discountPercent: z.number().min(0).max(100).optional(),
  }),
} as const satisfies Record<KnownEventName, z.ZodType>;

export type EventPropertiesOf<N extends KnownEventName> = z.infer<(typeof EVENT_PROPERTIES)[N]>;

/** The properties schema for a name, or undefined when the name is free-form. */
export function propertiesSchemaFor(name: string): z.ZodType | undefined {
  return Object.hasOwn(EVENT_PROPERTIES, name) ? EVENT_PROPERTIES[name as KnownEventName] : undefined;
}
