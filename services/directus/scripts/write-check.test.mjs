/**
 * The write check (WRITE_CHECK_SCRIPT, run by a blocking Flow) refuses exactly what the edge
 * cannot read: for every value below, the script refuses a create or an update if and only
 * if the edge's own parser skips the row Directus would then hold (trigger rules:
 * packages/edge-worker/src/catalog/source.ts; consent categories:
 * packages/edge-worker/src/config/consent-config.ts). The script runs in a fresh node:vm
 * context with what Directus's sandbox gives it (module, process.env, console).
 */
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import { WRITE_CHECK_SCRIPT } from './flow-scripts.mjs';

// consent-config.ts imports waitUntil from the Workers runtime, which Node has not; the
// function under test never calls it.
registerHooks({
  resolve(specifier, context, next) {
    if (specifier !== 'cloudflare:workers') return next(specifier, context);
    return {
      url: 'data:text/javascript,export const waitUntil = () => {}; export const env = {};',
      shortCircuit: true,
    };
  },
});
const { parseProducts, parseSlotContent, parseTriggerRules } = await import(
  '../../../packages/edge-worker/src/catalog/source.ts'
);
const { consentConfigFromRows } = await import('../../../packages/edge-worker/src/config/consent-config.ts');

/** The script's answer to a write: '' when it lets it through, else the message it fails the write with. */
async function check(collection, action, payload) {
  const context = vm.createContext({ module: { exports: null }, process: { env: {} }, console });
  vm.runInContext(WRITE_CHECK_SCRIPT, context);
  const $trigger = { event: `${collection}.items.${action}`, collection, payload };
  if (action === 'update') $trigger.keys = ['k'];
  try {
    await context.module.exports(structuredClone({ $trigger }));
    return '';
  } catch (e) {
    return String(e?.message);
  }
}

/** Runs `fn` with the edge's log lines (a skipped row is logged) kept out of the test output. */
async function quietly(fn) {
  const saved = [console.log, console.warn, console.error];
  console.log = console.warn = console.error = () => {};
  try {
    return await fn();
  } finally {
    [console.log, console.warn, console.error] = saved;
  }
}

/**
 * A value as Directus reads it back from SQLite, as observed on 12.4: JSON text is kept as
 * text and parsed when read (cast-json); a boolean column holds numeric text as a number
 * and reads 1/'1' as true, 0/'0' as false, '' as empty (cast-boolean); a text column holds
 * a number as its text.
 */
function readBack(kind, v) {
  if (v === undefined || v === null) return null;
  if (kind === 'json') {
    if (typeof v !== 'string') return JSON.parse(JSON.stringify(typeof v === 'boolean' ? Number(v) : v));
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  if (kind === 'boolean') {
    const n =
      typeof v === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v) ? Number(v) : v;
    if (n === true || n === 1 || n === '1') return true;
    if (n === false || n === 0 || n === '0') return false;
    return n === '' ? null : n;
  }
  if (kind === 'number')
    return typeof v === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(v) ? Number(v) : v;
  return typeof v === 'number' || typeof v === 'boolean' ? String(Number(v)) : v;
}

/** Whether the edge reads the row of `parse` Directus holds after this one was written (columns by kind). */
function edgeReads(parse, kinds, row) {
  const stored = Object.fromEntries(Object.entries(kinds).map(([f, kind]) => [f, readBack(kind, row[f])]));
  const skipped = [];
  parse([stored], skipped);
  return skipped.length === 0;
}

const RULE_KINDS = {
  id: 'text',
  enabled: 'boolean',
  on: 'text',
  when: 'json',
  recommend: 'json',
  promo: 'json',
};
/** Whether the edge reads the trigger rule Directus holds after this row was written. */
function edgeReadsRule(row) {
  const stored = Object.fromEntries(
    Object.entries(RULE_KINDS).map(([f, kind]) => [f, readBack(kind, row[f])]),
  );
  const skipped = [];
  parseTriggerRules([{ ...stored, enabled: stored.enabled ?? true }], skipped);
  return skipped.length === 0;
}

/** Whether the edge offers the consent category Directus holds after this row was written. */
async function edgeReadsCategory(row) {
  const stored = Object.fromEntries(
    ['key', 'label', 'description'].map((f) => [f, readBack('text', row[f])]),
  );
  const config = await quietly(() =>
    consentConfigFromRows([{ ...stored, required: false, enabled: true, default: false }]),
  );
  return config.categories.some((c) => c.key === row.key);
}

const PROMO = { codePrefix: 'TRAIL10', discountPercent: 10, ttlHours: 48, capPerPerson: 1 };
const without = (key) => Object.fromEntries(Object.entries(PROMO).filter(([k]) => k !== key));
const x = (n) => 'x'.repeat(n);

/** Values of each trigger rule field: what the edge reads, and what it skips, in every shape. */
const RULE_VALUES = {
  id: ['r', 7, x(128), '', x(129)],
  enabled: [true, false, 1, 0, '1', '0', '1.0', '', 'true', 'yes', 2, '2', [], {}],
  on: ['cart.item.added', 'Cart Item Added', 5, `a.${x(98)}`, `a.${x(99)}`, '', null, undefined],
  when: [
    null,
    {},
    { category: 'outdoor' },
    { category: x(128) },
    { category: x(129) },
    { category: 5 },
    { category: null },
    { tags: [] },
    { tags: ['jacket'] },
    { tags: Array(20).fill('t') },
    { tags: Array(21).fill('t') },
    { tags: [x(64)] },
    { tags: [x(65)] },
    { tags: 'jacket' },
    { tags: [1] },
    { tags: null },
    { other: 1 },
    [],
    ['outdoor'],
    'outdoor',
    '',
    ' ',
    5,
    true,
    'null',
    '"null"',
    '{"category":"outdoor"}',
    JSON.stringify(JSON.stringify({ category: 'outdoor' })),
    '{"category":5}',
    '[1]',
  ],
  recommend: [
    null,
    {},
    { limit: 1 },
    { limit: 20 },
    { limit: 0 },
    { limit: 21 },
    { limit: 2.5 },
    { limit: '3' },
    { limit: null },
    { categories: ['accessories'] },
    { categories: [x(128)] },
    { categories: [x(129)] },
    { categories: Array(21).fill('c') },
    { categories: 'accessories' },
    { tags: ['t'] },
    { tags: [null] },
    { categories: ['a'], tags: ['b'], limit: 3, extra: true },
    [],
    'three',
    7,
    'null',
    '"null"',
    JSON.stringify({ limit: 3 }),
    JSON.stringify({ limit: 0 }),
  ],
  promo: [
    null,
    PROMO,
    { ...PROMO, title: '{discount} % off', body: 'Until {until}.', extra: 1 },
    ...['trail', 'TRAIL-10', '', 'A'.repeat(16), 'A'.repeat(17), 'ÄBC', 5, null].map((codePrefix) => ({
      ...PROMO,
      codePrefix,
    })),
    ...[0, 100, 12.5, 100.5, -1, '10', null].map((discountPercent) => ({ ...PROMO, discountPercent })),
    ...[0, 0.5, 8760, 8761, -1, '48', null].map((ttlHours) => ({ ...PROMO, ttlHours })),
    ...[0, 1000, 1001, 1.5, -1, '1', null].map((capPerPerson) => ({ ...PROMO, capPerPerson })),
    ...['', x(200), x(201), null, 5].map((title) => ({ ...PROMO, title })),
    ...[x(2000), x(2001), null, []].map((body) => ({ ...PROMO, body })),
    ...Object.keys(PROMO).map(without),
    {},
    'ten percent off',
    '',
    10,
    '10',
    [],
    [PROMO],
    true,
    'null',
    '"null"',
    JSON.stringify(PROMO),
    JSON.stringify(JSON.stringify(PROMO)),
    JSON.stringify({ ...PROMO, codePrefix: 'trail' }),
  ],
};

const RULE = { id: 'rule-1', on: 'cart.item.added' };
/** Holds the script to the edge on each value of each field: on a create, and on an update of a saved row. */
function holdsToTheEdge(collection, values, { created: base, stored, edgeReads: reads, skip = [] }) {
  for (const [field, list] of Object.entries(values)) {
    it(`refuses a ${field} exactly when the edge would skip the row`, async () => {
      for (const value of list) {
        const shown = `${field} = ${JSON.stringify(value)?.slice(0, 60)}`;
        const created = { ...base, [field]: value };
        if (value === undefined) delete created[field];
        const onCreate = await check(collection, 'create', created);
        assert.equal(onCreate === '', reads({ ...stored, ...created }), `create with ${shown}: ${onCreate}`);
        if (skip.includes(field)) continue;
        const changed = value === undefined ? {} : { [field]: value };
        const onUpdate = await check(collection, 'update', changed);
        assert.equal(
          onUpdate === '',
          reads({ ...stored, ...base, ...changed }),
          `update with ${shown}: ${onUpdate}`,
        );
      }
    });
  }
}
describe('the write check, on trigger rules', () => {
  // The key of a saved row does not change: `id` is judged on a create alone.
  holdsToTheEdge('trigger_rules', RULE_VALUES, {
    created: RULE,
    stored: {},
    edgeReads: edgeReadsRule,
    skip: ['id'],
  });

  it('names each field it refuses and what to write instead', async () => {
    const message = await check('trigger_rules', 'create', {
      id: 'r',
      promo: { codePrefix: 'trail', discountPercent: 150, ttlHours: 48 },
    });
    assert.match(message, /^Not saved: the edge could not read this trigger rule/);
    assert.match(message, /\bon is required: the event that fires the rule, such as cart\.item\.added/);
    assert.match(
      message,
      /promo\.codePrefix must be 1 to 16 capital letters or digits, such as TRAIL10 \(got "trail"\)/,
    );
    assert.match(message, /promo\.discountPercent must be a number from 0 to 100 \(got 150\)/);
    assert.match(message, /promo\.capPerPerson is missing: a whole number from 0 to 1000/);
    assert.match(
      await check('trigger_rules', 'update', { promo: 'ten percent off' }),
      /promo must be a JSON object/,
    );
  });

  it('judges an update by the fields it changes alone', async () => {
    assert.equal(await check('trigger_rules', 'update', { enabled: false }), '');
    assert.equal(await check('trigger_rules', 'update', {}), '');
  });
});

const CATEGORY_VALUES = {
  label: ['Newsletter', x(128), ' ', x(129), '', null, undefined, 5],
  description: ['Offers by e-mail', '', x(2000), x(2001), null, undefined, 5],
};

describe('the write check, on consent categories', () => {
  for (const [field, values] of Object.entries(CATEGORY_VALUES)) {
    it(`refuses a ${field} exactly when the edge would leave the category out`, async () => {
      for (const value of values) {
        const shown = `${field} = ${JSON.stringify(value)?.slice(0, 60)}`;
        const created = { key: 'newsletter', label: 'Newsletter', [field]: value };
        if (value === undefined) delete created[field];
        const onCreate = await check('consent_categories', 'create', created);
        assert.equal(onCreate === '', await edgeReadsCategory(created), `create with ${shown}: ${onCreate}`);
        const changed = value === undefined ? {} : { [field]: value };
        const onUpdate = await check('consent_categories', 'update', changed);
        assert.equal(
          onUpdate === '',
          await edgeReadsCategory({ key: 'newsletter', label: 'Newsletter', description: null, ...changed }),
          `update with ${shown}: ${onUpdate}`,
        );
      }
    });
  }

  it('names the label and what to write when a create leaves it out', async () => {
    const message = await check('consent_categories', 'create', { key: 'newsletter' });
    assert.match(message, /^Not saved: the edge could not read this consent category/);
    assert.match(message, /\blabel is required: the name the consent banner shows, 1 to 128 characters/);
  });
});

const PRODUCT_KINDS = {
  id: 'text',
  slug: 'text',
  title: 'text',
  category: 'text',
  tags: 'json',
  price: 'number',
  currency: 'text',
  image: 'text',
  stock: 'number',
  popularity: 'number',
};
const PRODUCT = { id: 'p-1', slug: 'trail-jacket', title: 'Trail jacket', category: 'outdoor' };
/** Columns a create leaves out, as Directus fills them in (schema.mjs defaults). */
const PRODUCT_DEFAULTS = { price: 0, stock: 0, popularity: 0 };
const LIST = (n, item) => Array(n).fill(item);

const PRODUCT_VALUES = {
  title: ['Trail jacket', '', x(255), 5, null, undefined],
  slug: ['trail-jacket', x(128), x(129), '', null, undefined],
  category: ['outdoor', '', null, undefined],
  price: [0, 49.9, '49.9', ' 12 ', -1, '-1', '', ' ', 'free', null, undefined],
  currency: ['EUR', null, 'eur', 'EURO', '€', undefined],
  stock: [0, 12, '12', -3, 1.5, '1.5', '', 'many', null, undefined],
  tags: [
    null,
    [],
    ['jacket'],
    LIST(50, 't'),
    LIST(51, 't'),
    [x(64)],
    [x(65)],
    [1],
    'jacket',
    'jacket, waterproof',
    '["jacket"]',
    JSON.stringify('["jacket"]'),
    { jacket: true },
    '',
    'null',
    '"null"',
    undefined,
  ],
};

describe('the write check, on products', () => {
  // A blank price hides the product on purpose (not on sale yet): the check lets it through.
  const blank = (price) => price === null || (typeof price === 'string' && price.trim() === '');
  holdsToTheEdge('products', PRODUCT_VALUES, {
    created: PRODUCT,
    stored: PRODUCT_DEFAULTS,
    edgeReads: (row) =>
      edgeReads(parseProducts, PRODUCT_KINDS, blank(row.price) ? { ...row, price: 0 } : row),
  });

  it('names each field it refuses and what to write instead', async () => {
    const message = await check('products', 'create', {
      id: 'p',
      title: 'Boots',
      price: -5,
      stock: 1.5,
      tags: 'boots',
    });
    assert.match(message, /^Not saved: the edge could not read this product/);
    assert.match(message, /\bslug is required: the product page's address, such as trail-jacket/);
    assert.match(message, /\bcategory is required/);
    assert.match(message, /\bprice must be a number of 0 or more, such as 49\.9 \(got -5\)/);
    assert.match(message, /\bstock must be a whole number, such as 12, or empty for 0 \(got 1\.5\)/);
  });
});

const SLOT_KINDS = {
  id: 'text',
  slot: 'text',
  kind: 'text',
  title: 'text',
  body: 'text',
  image: 'text',
  href: 'text',
  targetInterests: 'json',
  targetSegments: 'json',
  isDefault: 'boolean',
  priority: 'number',
};
const VARIANT = { id: 'v-1', slot: 'hero', kind: 'banner', title: 'Ready for the trail?' };
const VARIANT_DEFAULTS = { isDefault: false, priority: 0 };
const TARGETS = [
  null,
  [],
  ['category:outdoor'],
  LIST(50, 't'),
  LIST(51, 't'),
  [x(200)],
  [x(201)],
  'outdoor',
  '["high_value"]',
  [5],
  undefined,
];

const SLOT_VALUES = {
  slot: ['hero', '', null, undefined],
  kind: ['banner', 'promo', 'recommendations', 'Banner', '', null, undefined],
  title: ['Ready for the trail?', '', x(255), 5, null, undefined],
  body: ['Free shipping over 50', '', x(20000), x(20001), null, undefined],
  isDefault: [true, false, 1, 0, '1', '0', '', 'yes', 2, undefined],
  priority: [0, 10, -1, 2.5, '3', '', 'high', null, undefined],
  targetInterests: TARGETS,
  targetSegments: TARGETS,
};

describe('the write check, on slot content', () => {
  holdsToTheEdge('slot_content', SLOT_VALUES, {
    created: VARIANT,
    stored: VARIANT_DEFAULTS,
    edgeReads: (row) =>
      edgeReads(parseSlotContent, SLOT_KINDS, { ...row, isDefault: row.isDefault ?? false }),
  });

  it('names the fields a variant needs to be served, and what to write', async () => {
    const message = await check('slot_content', 'create', { id: 'v', slot: 'hero', body: 'Free shipping' });
    assert.match(message, /^Not saved: the edge could not read this slot content/);
    assert.match(message, /\bkind is required: banner, promo or recommendations/);
    assert.match(message, /\btitle is required: the heading the slot shows/);
    assert.match(await check('slot_content', 'update', { title: null }), /\btitle is required/);
  });
});

describe('the write check script', () => {
  it('lets through what it does not check', async () => {
    assert.equal(await check('orders', 'create', { id: 'o', total: null }), '');
    assert.equal(await check('trigger_rules', 'create', [{ id: 'r' }]), '');
  });

  it('holds no {{ or }}, which Directus would render as a template in its code', () => {
    assert.doesNotMatch(WRITE_CHECK_SCRIPT, /\{\{|\}\}/);
  });
});
