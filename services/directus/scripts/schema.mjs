/**
 * Attune's Directus schema as data: every collection, its fields, and what the
 * `attune-sync` policy may do with it. bootstrap.mjs applies it idempotently over the
 * REST API (creates what is missing, never drops anything a marketer added).
 *
 * Field names of products, slot_content and trigger_rules match the edge's types in
 * packages/edge-worker/src/catalog/types.ts (camelCase, arrays/objects as JSON), so the
 * Worker reads rows as they are. Person keys are plain strings, not relations: events
 * and profiles arrive in any order and an erasure must delete rows without cascades.
 */

import {
  BUILT_IN_SEGMENTS,
  CONSENT_KEY_PATTERN,
  EVENT_NAME_PATTERN,
  SLOT_NAME_PATTERN,
} from '../../../packages/shared-schema/src/constants.ts';

const pk = (field, maxLength = 64) => ({
  field,
  type: 'string',
  meta: { interface: 'input', readonly: false },
  schema: { is_primary_key: true, length: maxLength, has_auto_increment: false },
});
const str = (field, opts = {}) => ({
  field,
  type: 'string',
  meta: { interface: 'input', ...(opts.meta ?? {}) },
  schema: {
    is_nullable: opts.nullable ?? true,
    is_indexed: opts.indexed ?? false,
    max_length: opts.length ?? 255,
  },
});
const text = (field) => ({
  field,
  type: 'text',
  meta: { interface: 'input-multiline' },
  schema: { is_nullable: true },
});
const json = (field, note) => ({
  field,
  type: 'json',
  meta: { interface: 'input-code', options: { language: 'json' }, special: ['cast-json'], note },
  schema: { is_nullable: true },
});
/** A JSON list of strings, edited as tags (suggesting `presets`, taking any other value too). */
const tags = (field, { presets = [], note } = {}) => ({
  field,
  type: 'json',
  meta: { interface: 'tags', options: { presets, allowCustom: true }, special: ['cast-json'], note },
  schema: { is_nullable: true },
});
const int = (field, def = null) => ({
  field,
  type: 'integer',
  meta: { interface: 'input' },
  schema: { is_nullable: true, default_value: def },
});
const float = (field, def = null, note = undefined) => ({
  field,
  type: 'float',
  meta: { interface: 'input', ...(note && { note }) },
  schema: { is_nullable: true, default_value: def },
});
const bool = (field, def = false) => ({
  field,
  type: 'boolean',
  meta: { interface: 'boolean', special: ['cast-boolean'] },
  schema: { is_nullable: false, default_value: def },
});
/** A yes/no that may be unknown: empty (null) is neither, so no default stands in for it. */
const maybe = (field, note) => ({
  field,
  type: 'boolean',
  meta: { interface: 'boolean', special: ['cast-boolean'], note },
  schema: { is_nullable: true, default_value: null },
});
const ts = (field, opts = {}) => ({
  field,
  type: 'timestamp',
  meta: {
    interface: 'datetime',
    ...(opts.note && { note: opts.note }),
    // Stamped by Directus (`date-updated`: on every update through its API or Data Studio).
    ...(opts.special && { special: opts.special, readonly: true }),
  },
  schema: { is_nullable: true, is_indexed: opts.indexed ?? false },
});

/** @type {Array<{collection: string, note: string, icon: string, accountability?: null | 'activity', fields: object[], sync: string[]}>} */
export const COLLECTIONS = [
  {
    collection: 'people',
    icon: 'person',
    // Machine-written at volume: no activity/revision rows per write (they cost more than the write).
    accountability: null,
    note: 'One row per person per site (latest profile snapshot from the edge; the highest version wins).',
    sync: ['create', 'read', 'update', 'delete'],
    fields: [
      pk('id', 400),
      str('site_id', { indexed: true }),
      str('person_key', { indexed: true, length: 300 }),
      int('version', 0),
      json('anonymous_ids'),
      str('user_id', { length: 300 }),
      json('traits'),
      json('interests'),
      json('segments'),
      json('counters'),
      json('consent'),
      ts('first_seen'),
      ts('last_seen'),
    ],
  },
  {
    collection: 'events',
    icon: 'bolt',
    accountability: null,
    note: 'The event log (analytics purpose). The event id (ULID) is the key, so a redelivered event cannot be written twice.',
    sync: ['create', 'read', 'delete'],
    fields: [
      pk('id', 26),
      str('site_id', { indexed: true }),
      str('person_key', { indexed: true, length: 300 }),
      str('type', { length: 16 }),
      str('name', { indexed: true, length: 128 }),
      ts('timestamp'),
      ts('corrected_timestamp'),
      ts('received_at', { indexed: true }),
      str('anonymous_id', { length: 300 }),
      str('user_id', { length: 300 }),
      str('session_id', { length: 300 }),
      int('schema_version', 1),
      json('properties'),
      json('traits'),
      json('context'),
      json('enrichment'),
      json('purposes'),
    ],
  },
  {
    collection: 'consent_records',
    icon: 'verified_user',
    accountability: null,
    note: 'Proof of each consent choice: what the person answered, what was granted, under which policy, when and from where.',
    sync: ['create', 'read', 'delete'],
    fields: [
      pk('id', 26),
      str('site_id', { indexed: true }),
      str('person_key', { indexed: true, length: 300 }),
      json(
        'categories',
        "What the edge granted of the choice: the site's categories as they stood when it arrived (required ones on, disabled or unknown ones off), marketing off under Global Privacy Control.",
      ),
      // The answers themselves: a choice made under an older policy names categories removed or
      // disabled since, which `categories` leaves out or turns off.
      json(
        'claimed',
        'The answers as the person gave them, under policy_version (compare with that version in policy_versions): yes/no under category-shaped keys, at most 64. Empty: recorded before answers were kept.',
      ),
      str('policy_version', { length: 64 }),
      str('source', { length: 64 }),
      ts('recorded_at'),
      // When the person chose (the event's corrected time): the choice in force is the latest
      // chosen, not the latest received (an offline device flushes an older choice late).
      ts('chosen_at'),
      // Why marketing is off, when GPC turned it off. Nullable without a default: rows synced
      // before it was recorded (and bootstrap adding it to an existing instance) stay unknown,
      // never "no GPC".
      maybe(
        'gpc',
        'Global Privacy Control was in force for this choice (Sec-GPC: 1 on its request, or source gpc), so marketing is off. Empty: recorded before this was kept (unknown).',
      ),
    ],
  },
  {
    collection: 'policy_versions',
    icon: 'policy',
    accountability: null,
    note: 'What each consent policy version said (its categories, labels and descriptions), as the edge first read it: a consent record names only the version.',
    sync: ['create', 'read'],
    fields: [
      // <site id>:<policy version>
      pk('id', 160),
      str('site_id', { indexed: true }),
      str('policy_version', { length: 64 }),
      json('categories'),
      ts('first_seen_at'),
    ],
  },
  {
    collection: 'erasure_proofs',
    icon: 'delete_forever',
    note: 'That a person was erased, when and why (request or retention), keyed by the erasure id DELETE /v1/people/:id answered, with what it deleted over all its attempts: never who, never what. Erased at empty: still under way.',
    // No update: the Worker counts into an open proof and closes it through the attune-sync
    // extension (POST /attune-sync/erasure-proofs), which leaves a closed proof as it is. An
    // update permission here would let the token rewrite any proof (Directus 12 without a
    // licence cannot narrow it to the counts of an open one).
    sync: ['create', 'read'],
    fields: [
      pk('id', 64),
      str('site_id', { indexed: true }),
      // request (DELETE /v1/people/:id) or retention (inactive past the period).
      str('reason', { length: 16 }),
      ts('requested_at'),
      // Opened empty before the erasure's first delete, set once its last step is done: a
      // proof is never missing for an erasure that deleted something, and never looks done
      // before it is.
      ts('erased_at', {
        note: 'When the erasure was done. Empty: still under way (it is retried until done; one Directus refuses waits in dead_letters as "erasure not done"), and the counts are what it has deleted so far.',
      }),
      int('people_deleted', 0),
      int('events_deleted', 0),
      int('consent_records_deleted', 0),
      int('dead_letters_deleted', 0),
      // A count, like the others: the orders stay, and nothing here says whose they were.
      int('orders_anonymized', 0),
    ],
  },
  {
    collection: 'lift_reports',
    icon: 'trending_up',
    accountability: null,
    note: 'Whether personalization works: per site, experiment and day, the conversion rates of treated and held-out people and the lift, written daily by the Worker (POST /v1/admin/lift on demand). Counts only: never who.',
    // Upserted: a second run the same day replaces that day's row.
    sync: ['create', 'read', 'update'],
    fields: [
      // <site id>:<experiment>:<days>d:<YYYY-MM-DD of window_end>
      pk('id', 255),
      str('site_id', { indexed: true, length: 64 }),
      str('experiment', { length: 128 }),
      ts('window_start'),
      ts('window_end', { indexed: true }),
      int('treatment_people', 0),
      int('treatment_converters', 0),
      int('treatment_conversions', 0),
      float('treatment_rate', 0),
      int('holdout_people', 0),
      int('holdout_converters', 0),
      int('holdout_conversions', 0),
      float('holdout_rate', 0),
      // Null when the held-out people did not convert or no treated person was exposed (nothing to compare).
      float('lift'),
      // How sure the report is (packages/edge-worker/src/decide/lift-stats.ts): without them
      // "+66 %" from a handful of conversions reads like a result.
      float(
        'difference_low',
        null,
        'Low end of the 95 % confidence interval of treatment_rate − holdout_rate (Newcombe hybrid score interval). Empty when a group has nobody.',
      ),
      float(
        'difference_high',
        null,
        'High end of the 95 % confidence interval of treatment_rate − holdout_rate. Empty when a group has nobody.',
      ),
      float(
        'lift_low',
        null,
        'Low end of the 95 % confidence interval of lift (log interval of the rate ratio). Empty when a group has no converter.',
      ),
      float(
        'lift_high',
        null,
        'High end of the 95 % confidence interval of lift. Empty when a group has no converter.',
      ),
      maybe(
        'significant',
        'Whether the difference is significant at 95 %: its interval leaves out 0. Empty when a group has nobody, or on a report made before intervals were kept.',
      ),
      int('events_read', 0),
      // The read stopped at its bound (200,000 events): the counts cover the window's oldest part only.
      bool('truncated', false),
      ts('computed_at'),
    ],
  },
  {
    collection: 'dead_letters',
    icon: 'report',
    accountability: null,
    note: 'Queue messages the sync could not write, with why: look, fix, send again. Erased with their person; deleted after EVENT_RETENTION_DAYS, except an erasure not done.',
    sync: ['create', 'read', 'delete'],
    fields: [
      pk('id', 64),
      str('site_id', { indexed: true }),
      str('person_key', { indexed: true, length: 300 }),
      text('reason'),
      int('attempts'),
      ts('failed_at', { indexed: true }),
      json('message'),
    ],
  },
  {
    collection: 'products',
    icon: 'inventory_2',
    note: 'The catalog the edge scores (fields match Product in the edge worker).',
    sync: ['read'],
    fields: [
      pk('id', 64),
      str('slug', { indexed: true, meta: { required: true } }),
      str('title', { meta: { required: true } }),
      str('category', { indexed: true, length: 64, meta: { required: true } }),
      json('tags'),
      float('price', 0),
      // What the edge accepts (catalog/source.ts): a row it cannot read is skipped there, and
      // the product silently disappears from recommendations; refused here, the marketer sees why.
      str('currency', {
        length: 3,
        meta: {
          note: 'ISO 4217, upper case: EUR, USD, GBP',
          validation: { _and: [{ currency: { _regex: '^[A-Z]{3}$' } }] },
          validation_message: 'Three capital letters, such as EUR',
        },
      }),
      str('image'),
      int('stock', 0),
      {
        ...float('popularity', 0),
        meta: {
          ...float('popularity', 0).meta,
          note: 'From 0 (least) to 1 (most popular)',
          validation: { _and: [{ popularity: { _gte: 0 } }, { popularity: { _lte: 1 } }] },
          validation_message: 'A number from 0 to 1',
        },
      },
      text('description'),
      // Whose row it is: the edge serves a site only its own rows and the shared ones.
      str('site_id', {
        length: 64,
        indexed: true,
        meta: { note: 'The site it is for (as in ATTUNE_SITES); empty: every site' },
      }),
    ],
  },
  {
    collection: 'slot_content',
    icon: 'view_quilt',
    note: 'Banner, promo and recommendation variants per slot (fields match SlotVariant).',
    sync: ['read'],
    fields: [
      pk('id', 64),
      str('slot', {
        indexed: true,
        length: 64,
        meta: {
          required: true,
          note: 'The data-attune-slot name pages use: lower case, digits, - or _ (hero, promo)',
          // As decide takes slot names: a slot named otherwise is never asked for.
          validation: { _and: [{ slot: { _regex: SLOT_NAME_PATTERN.source } }] },
          validation_message: 'A slot name as pages use it: lower case, digits, - or _',
        },
      }),
      str('kind', {
        length: 32,
        meta: {
          // The edge serves no variant without a kind or a title (the write check Flow refuses one).
          required: true,
          interface: 'select-dropdown',
          options: {
            choices: ['banner', 'promo', 'recommendations'].map((value) => ({ text: value, value })),
          },
          validation: { _and: [{ kind: { _in: ['banner', 'promo', 'recommendations'] } }] },
          validation_message: 'banner, promo or recommendations',
        },
      }),
      str('title', {
        meta: { required: true, note: 'The heading the slot shows (over the products, for recommendations)' },
      }),
      text('body'),
      str('image'),
      str('href'),
      tags('targetInterests', {
        note: 'Interests the variant is for: category:<category> or tag:<tag> (e.g. category:outdoor, tag:jacket), as products carry them.',
      }),
      tags('targetSegments', {
        presets: Object.values(BUILT_IN_SEGMENTS),
        note: "Segments the variant is for: the built-in ones suggested here, or a site's own, defined in the Worker's ATTUNE_SITES settings.segments (the demo site's: buyers). A name no rule defines matches no one.",
      }),
      bool('isDefault', false),
      int('priority', 0),
      // Whose row it is: the edge serves a site only its own rows and the shared ones.
      str('site_id', {
        length: 64,
        indexed: true,
        meta: { note: 'The site it is for (as in ATTUNE_SITES); empty: every site' },
      }),
    ],
  },
  {
    collection: 'trigger_rules',
    icon: 'flash_on',
    note: 'Real-time triggers as data (fields match TriggerRule).',
    sync: ['read'],
    fields: [
      pk('id', 64),
      bool('enabled', true),
      str('on', {
        length: 128,
        meta: {
          required: true,
          note: 'The event that fires it, as the edge names events: cart.item.added, product.viewed',
          // As events are named: a rule on any other name never fires.
          validation: { _and: [{ on: { _regex: EVENT_NAME_PATTERN.source } }] },
          validation_message: 'An event name like cart.item.added (dotted, lower case)',
        },
      }),
      json('when'),
      json('recommend'),
      json('promo'),
      // Whose row it is: the edge serves a site only its own rows and the shared ones.
      str('site_id', {
        length: 64,
        indexed: true,
        meta: { note: 'The site it is for (as in ATTUNE_SITES); empty: every site' },
      }),
    ],
  },
  {
    collection: 'consent_categories',
    icon: 'cookie',
    note: 'The consent categories a site offers. Any change changes the policy version, which asks people again.',
    sync: ['read'],
    fields: [
      // What the edge reads (config/consent-config.ts): a row it cannot read is left out there
      // (a purpose falls back to its built-in wording); refused here, the marketer sees why.
      {
        ...pk('key', 64),
        meta: {
          ...pk('key').meta,
          note: 'Lower case: a letter, then letters, digits or _ (analytics, newsletter_2)',
          validation: { _and: [{ key: { _regex: CONSENT_KEY_PATTERN.source } }] },
          validation_message: 'A lower-case key: a letter, then letters, digits or _',
        },
      },
      str('label', {
        length: 128,
        meta: {
          required: true,
          validation: { _and: [{ label: { _regex: '\\S' } }] },
          validation_message: 'A label the banner can show',
        },
      }),
      text('description'),
      {
        ...bool('required', false),
        meta: {
          ...bool('required').meta,
          note: 'Granted to everyone. Ignored on analytics, personalization and marketing: consent to a purpose is a choice.',
        },
      },
      bool('enabled', true),
      {
        // Never read (no box is ticked for the visitor: consent must be their act), but part of
        // the policy version, so a change would ask everyone again for nothing: kept out of reach.
        ...bool('default', false),
        meta: {
          ...bool('default').meta,
          hidden: true,
          readonly: true,
          note: 'Not used: the banner ticks nothing. Changing it would ask everyone again.',
        },
      },
      int('sort', 0),
      str('site_id', { length: 64, meta: { note: 'Empty: offered on every site' } }),
    ],
  },
  {
    collection: 'sites',
    icon: 'language',
    note: 'A record of the sites, for reading: the Worker takes its sites from ATTUNE_SITES (wrangler vars), so editing them here changes nothing at the edge.',
    sync: ['read'],
    fields: [
      pk('id', 64),
      str('name'),
      str('write_key', { length: 128 }),
      json('allowed_origins'),
      json('settings'),
    ],
  },
  {
    collection: 'orders',
    icon: 'shopping_cart',
    note: 'Orders from a backend; a Flow sends each new order to the edge as order.completed.',
    // Who changed an order is logged, but no revision copies its data: a shop that deletes a
    // buyer's orders (an erasure request) must not leave their ids and items in directus_revisions.
    accountability: 'activity',
    // An access request lists a person's orders; an erasure clears whose they were (user_id,
    // anonymous_id) and keeps the order, a shop's record for its accounts. No create or delete.
    // Update is of every field: Directus 12 without a licence refuses a permission limited to
    // some fields (a "custom permission rule", entitlement custom_permission_rules_enabled),
    // and leaves one out of the policy if it is stored anyway.
    sync: ['read', 'update'],
    fields: [
      pk('id', 64),
      // Indexed: an access request and an erasure find a person's orders by these (on a new
      // instance: bootstrap leaves the columns of an existing one as they are).
      str('site_id', { length: 64, indexed: true }),
      str('user_id', { length: 300, indexed: true }),
      str('anonymous_id', { length: 300, indexed: true }),
      float('total', 0),
      str('currency', { length: 3 }),
      json('items'),
      str('status', { length: 32 }),
      ts('created_at'),
      // When the order was last changed: the Worker's catch-up reads by it the orders an
      // update marked paid whose Flow call was lost (placed days before, by bank transfer).
      ts('date_updated', {
        // cast-timestamp as Directus gives a date-updated field it creates: the same on an
        // instance whose field a later bootstrap patches.
        special: ['date-updated', 'cast-timestamp'],
        indexed: true,
        note: 'Set by Directus on every update; the edge catches up by it the orders marked paid whose Flow call was lost.',
      }),
    ],
  },
];

/** Collections whose change must reach the edge caches (the invalidation Flow watches these). */
export const EDGE_CACHED_COLLECTIONS = ['products', 'slot_content', 'trigger_rules', 'consent_categories'];
