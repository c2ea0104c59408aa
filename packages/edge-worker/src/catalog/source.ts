/**
 * Reads the catalog, slot content and trigger rules from Directus (REST, `DIRECTUS_TOKEN`)
 * and validates them, so one malformed row is skipped and named instead of breaking every
 * decision. Field names match src/catalog/types.ts.
 */
import { PROMO_CODE_PREFIX_PATTERN } from '@attune/shared-schema';
import { z } from 'zod';
import type { CatalogSnapshot } from './fixtures/catalog.ts';
import type { Product, SlotVariant, TriggerRule } from './types.ts';

/** Directus stores JSON fields as JSON or, from some imports, as JSON text; accept both. */
const jsonish = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }, schema);

const text = z.string().max(2000);

/**
 * Directus names a row's site `site_id` (as on every sited collection); the edge's types
 * say `siteId`. Renamed before validation, so each schema reads one name.
 */
const sited = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (row) =>
      row !== null && typeof row === 'object' && 'site_id' in row ? { ...row, siteId: row.site_id } : row,
    schema,
  );
const key = z.string().min(1).max(128);

/**
 * The site a row belongs to: a row of one site must never reach another's pages, decisions
 * or triggers. Empty (null): shared by every site, as every row was before rows had a site.
 */
const rowSite = z
  .string()
  .max(64)
  .nullish()
  .transform((v) => (v === null || v === undefined || v === '' ? undefined : v));

const ProductSchema = z.object({
  id: z.union([key, z.number().transform(String)]),
  slug: key,
  title: text,
  category: key,
  tags: jsonish(z.array(z.string().max(64)).max(50))
    .nullish()
    .transform((v) => v ?? []),
  // A blank price (Directus sends null, or '' from an import) is no price: `z.coerce` would
  // read it as 0 and the product be recommended at 0.00, so the row is skipped and named.
  price: z.union([z.number(), z.string().trim().min(1).transform(Number)]).pipe(z.number().nonnegative()),
  // Nullable columns: Directus sends null for an empty one, which `.default()` would reject.
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .nullish()
    .transform((v) => v ?? 'EUR'),
  image: z
    .string()
    .max(2048)
    .nullish()
    .transform((v) => v ?? ''),
  stock: z.coerce.number().int(),
  popularity: z.coerce.number().min(0).max(1).catch(0),
  siteId: rowSite,
}) satisfies z.ZodType<Product, unknown>;

const SlotVariantSchema = z.object({
  id: z.union([key, z.number().transform(String)]),
  slot: z.string().min(1).max(64),
  kind: z.enum(['banner', 'promo', 'recommendations']),
  title: text,
  body: z
    .string()
    .max(20000)
    .nullish()
    .transform((v) => v ?? ''),
  image: z
    .string()
    .max(2048)
    .nullish()
    .transform((v) => v ?? undefined),
  href: z
    .string()
    .max(2048)
    .nullish()
    .transform((v) => v ?? undefined),
  targetInterests: jsonish(z.array(z.string().max(200)).max(50))
    .nullish()
    .transform((v) => v ?? []),
  targetSegments: jsonish(z.array(z.string().max(200)).max(50))
    .nullish()
    .transform((v) => v ?? []),
  isDefault: z
    .boolean()
    .nullish()
    .transform((v) => v ?? false),
  priority: z.coerce.number().default(0),
  siteId: rowSite,
}) satisfies z.ZodType<SlotVariant, unknown>;

const TriggerRuleSchema = z.object({
  id: z.union([key, z.number().transform(String)]),
  enabled: z
    .boolean()
    .nullish()
    .transform((v) => v ?? true),
  on: z.string().min(1).max(100),
  when: jsonish(
    z.object({
      category: z.string().max(128).optional(),
      tags: z.array(z.string().max(64)).max(20).optional(),
    }),
  )
    .nullish()
    .transform((v) => v ?? {}),
  recommend: jsonish(
    z.object({
      categories: z.array(z.string().max(128)).max(20).optional(),
      tags: z.array(z.string().max(64)).max(20).optional(),
      limit: z.number().int().min(1).max(20).optional(),
    }),
  )
    .nullish()
    .transform((v) => v ?? undefined),
  promo: jsonish(
    z.object({
      codePrefix: z.string().regex(PROMO_CODE_PREFIX_PATTERN),
      discountPercent: z.number().min(0).max(100),
      ttlHours: z
        .number()
        .positive()
        .max(24 * 365),
      capPerPerson: z.number().int().min(0).max(1000),
      title: z.string().max(200).optional(),
      body: z.string().max(2000).optional(),
    }),
  )
    .nullish()
    .transform((v) => v ?? undefined),
  siteId: rowSite,
}) satisfies z.ZodType<TriggerRule, unknown>;

/** Rows that failed validation, by collection and row id — reported, never fatal. */
export interface SkippedRow {
  collection: string;
  id: string;
  problem: string;
}

/** Keeps the valid rows of a collection and names the invalid ones. */
export function parseRows<T>(
  collection: string,
  rows: unknown,
  schema: z.ZodType<T, unknown>,
  skipped: SkippedRow[],
): T[] {
  if (!Array.isArray(rows)) {
    skipped.push({ collection, id: '*', problem: 'expected an array of rows in `data`' });
    return [];
  }
  const out: T[] = [];
  for (const row of rows) {
    const parsed = schema.safeParse(row);
    if (parsed.success) out.push(parsed.data);
    else {
      const id = row !== null && typeof row === 'object' && 'id' in row ? String(row.id) : '?';
      const issue = parsed.error.issues[0];
      skipped.push({
        collection,
        id,
        problem: issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid',
      });
    }
  }
  return out;
}

export const parseProducts = (rows: unknown, skipped: SkippedRow[]): Product[] =>
  parseRows('products', rows, sited(ProductSchema), skipped);
export const parseSlotContent = (rows: unknown, skipped: SkippedRow[]): SlotVariant[] =>
  parseRows('slot_content', rows, sited(SlotVariantSchema), skipped);
export const parseTriggerRules = (rows: unknown, skipped: SkippedRow[]): TriggerRule[] =>
  parseRows('trigger_rules', rows, sited(TriggerRuleSchema), skipped);

const DIRECTUS_TIMEOUT_MS = 5000;

/**
 * The product fields the edge reads: not `description`, whose text (up to a page per
 * product) only the shop shows; read, it made a large catalog's snapshot outgrow KV.
 */
const PRODUCT_FIELDS = [
  'id',
  'slug',
  'title',
  'category',
  'tags',
  'price',
  'currency',
  'image',
  'stock',
  'popularity',
  'site_id',
];

async function readCollection(
  env: { DIRECTUS_URL: string; DIRECTUS_TOKEN: string },
  collection: string,
  fields?: readonly string[],
): Promise<unknown> {
  const base = String(env.DIRECTUS_URL).replace(/\/+$/, '');
  const only = fields !== undefined ? `&fields=${fields.join(',')}` : '';
  const res = await fetch(`${base}/items/${collection}?limit=-1${only}`, {
    headers: { authorization: `Bearer ${env.DIRECTUS_TOKEN}`, accept: 'application/json' },
    signal: AbortSignal.timeout(DIRECTUS_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`Directus ${collection}: HTTP ${res.status}`);
  const body: unknown = await res.json();
  return body !== null && typeof body === 'object' && 'data' in body ? body.data : undefined;
}

/** Loads a fresh snapshot from Directus; throws when Directus cannot be read at all. */
export async function loadCatalogFromDirectus(
  env: { DIRECTUS_URL: string; DIRECTUS_TOKEN: string },
  version: string,
): Promise<{ snapshot: CatalogSnapshot; skipped: SkippedRow[] }> {
  const [products, slots, rules] = await Promise.all([
    readCollection(env, 'products', PRODUCT_FIELDS),
    readCollection(env, 'slot_content'),
    readCollection(env, 'trigger_rules'),
  ]);
  const skipped: SkippedRow[] = [];
  return {
    snapshot: {
      version,
      products: parseProducts(products, skipped),
      slotContent: parseSlotContent(slots, skipped),
      triggerRules: parseTriggerRules(rules, skipped),
    },
    skipped,
  };
}
