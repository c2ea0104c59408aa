/**
 * Code of the Flows' "Run Script" operations. Directus runs them in an isolated-vm
 * sandbox with no crypto and no TextEncoder, so the HMAC-SHA256 that signs hooks to the
 * Worker is written out in plain JS here (the Flow integration test checks it end to end: the Worker verifies it with WebCrypto).
 * Secrets come from `process.env`, which Directus fills from FLOWS_ENV_ALLOW_LIST. Directus
 * renders `{{ … }}` templates in every operation's options, the code included: no script
 * may contain two opening or closing braces in a row.
 */
import { ConsentCategoryConfigSchema } from '../../../packages/shared-schema/src/consent.ts';
import {
  LIMITS,
  PROMO_CODE_PREFIX_PATTERN,
  PURCHASE_ORDER_STATUSES,
} from '../../../packages/shared-schema/src/constants.ts';

/** Plain-JS SHA-256 / HMAC-SHA256 over UTF-8 strings, hex output. */
export const HMAC_JS = `
function utf8Bytes(s) {
  var bin = unescape(encodeURIComponent(s)); var out = new Array(bin.length);
  for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
var SHA_K = [], SHA_H = [];
(function () {
  var n = 2, c = 0;
  while (c < 64) {
    var prime = true;
    for (var d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
    if (prime) {
      if (c < 8) SHA_H.push((Math.pow(n, 1 / 2) * 4294967296) | 0);
      SHA_K.push((Math.pow(n, 1 / 3) * 4294967296) | 0);
      c++;
    }
    n++;
  }
})();
function sha256(bytes) {
  var h = SHA_H.slice(), k = SHA_K, msg = bytes.slice(), bitLen = bytes.length * 8;
  msg.push(0x80);
  while (msg.length % 64 !== 56) msg.push(0);
  var hi = Math.floor(bitLen / 4294967296), lo = bitLen >>> 0;
  msg.push((hi >>> 24) & 255, (hi >>> 16) & 255, (hi >>> 8) & 255, hi & 255, (lo >>> 24) & 255, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255);
  var w = new Array(64);
  for (var off = 0; off < msg.length; off += 64) {
    for (var i = 0; i < 16; i++) w[i] = (msg[off + 4 * i] << 24) | (msg[off + 4 * i + 1] << 16) | (msg[off + 4 * i + 2] << 8) | msg[off + 4 * i + 3];
    for (i = 16; i < 64; i++) {
      var x = w[i - 15], y = w[i - 2];
      var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (i = 0; i < 64; i++) {
      var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      var ch = (e & f) ^ (~e & g);
      var t1 = (hh + S1 + ch + k[i] + w[i]) | 0;
      var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      var maj = (a & b) ^ (a & c) ^ (b & c);
      var t2 = (S0 + maj) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
  }
  var out = [];
  for (i = 0; i < 8; i++) out.push((h[i] >>> 24) & 255, (h[i] >>> 16) & 255, (h[i] >>> 8) & 255, h[i] & 255);
  return out;
}
function hmacSha256Hex(key, message) {
  var kb = utf8Bytes(key);
  if (kb.length > 64) kb = sha256(kb);
  while (kb.length < 64) kb.push(0);
  var ipad = [], opad = [];
  for (var i = 0; i < 64; i++) { ipad.push(kb[i] ^ 0x36); opad.push(kb[i] ^ 0x5c); }
  var inner = sha256(ipad.concat(utf8Bytes(message)));
  var mac = sha256(opad.concat(inner));
  var hex = '';
  for (i = 0; i < mac.length; i++) hex += (mac[i] < 16 ? '0' : '') + mac[i].toString(16);
  return hex;
}
`;

/** Builds the signed body of a cache-invalidation hook from a Flow's event trigger. */
export const INVALIDATION_SCRIPT = `${HMAC_JS}
module.exports = async function (data) {
  var t = data.$trigger || {};
  var keys = Array.isArray(t.keys) ? t.keys : t.key !== undefined ? [t.key] : Array.isArray(t.payload) ? t.payload : [];
  var body = JSON.stringify({
    source: 'directus',
    collection: String(t.collection || ''),
    event: String(t.event || ''),
    keys: keys.map(function (k) { return String(k); }).slice(0, 1000),
    at: new Date().toISOString()
  });
  return { body: body, signature: 'sha256=' + hmacSha256Hex(process.env.ATTUNE_HOOK_SECRET || '', body) };
};
`;

/**
 * Turns an order, created paid or marked paid by an update (several at once: one event
 * each, in one batch), into an \`order.completed\` CustomerAction for the Worker's
 * server-side ingest. The event id is a ULID whose time part is the order's creation time
 * and whose random part is derived from the order id, so a retried Flow run cannot
 * count an order twice. The Worker's order catch-up makes the same event, with the same id,
 * for an order whose call was lost (packages/edge-worker/src/orders/catch-up.ts,
 * `orderEvent`): a change here must be made there too.
 */
export const ORDER_SCRIPT = `${HMAC_JS}
var PAID = ${JSON.stringify(PURCHASE_ORDER_STATUSES)};
var CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
var B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
function base64(s) {
  var b = utf8Bytes(s), out = '';
  for (var i = 0; i < b.length; i += 3) {
    var n = (b[i] << 16) | ((b[i + 1] || 0) << 8) | (b[i + 2] || 0);
    out += B64.charAt((n >> 18) & 63) + B64.charAt((n >> 12) & 63);
    out += i + 1 < b.length ? B64.charAt((n >> 6) & 63) : '=';
    out += i + 2 < b.length ? B64.charAt(n & 63) : '=';
  }
  return out;
}
function ulidFor(timeMs, seed) {
  var time = '', t = timeMs;
  for (var i = 0; i < 10; i++) { time = CROCKFORD.charAt(t % 32) + time; t = Math.floor(t / 32); }
  var hash = sha256(utf8Bytes(seed)), rand = '';
  for (i = 0; i < 16; i++) rand += CROCKFORD.charAt(hash[i] % 32);
  return time + rand;
}
/**
 * The browser of the order's event. An order placed without one by a signed-in user is the
 * shop's server speaking: \`server:<userId>\` (what the Segment path uses too), which the
 * ProfileDO never adds to the person's browsers. A made-up browser would be merged into the
 * person as one more browser per order (an alias object each, shown in access answers,
 * pushing real browsers out of the capped list). An order with neither id (a guest checkout
 * from a backend that knows no browser) keeps \`order-<orderId>\`: nobody's browser, so it
 * merges into no one, and with no consent on record for it the edge drops it (counted as
 * dropped by consent) rather than profile a guest who never chose.
 */
function anonymousIdOf(order, id) {
  if (order.anonymous_id) return String(order.anonymous_id);
  if (order.user_id) return 'server:' + String(order.user_id);
  return 'order-' + id;
}
/**
 * The order.completed event of an order of this site, or why it is not sent: a message
 * naming the order and site ids alone (it lands in Directus's log of the run).
 */
function orderEventOf(order, id, ownSite) {
  // The Flow holds one site's keys: an order of another site sent with them would land on
  // this site's person of the same user id. It is not sent (the run fails, saying why).
  var siteId = order.site_id ? String(order.site_id) : ownSite;
  if (siteId !== ownSite)
    return 'order ' + id.slice(0, 64) + ' is for site ' + siteId.slice(0, 64) + ': this Flow sends the orders of site ' + ownSite + ' only (ATTUNE_SITE_ID, with its ATTUNE_WRITE_KEY and ATTUNE_SERVER_KEY)';
  // Only a paid order is a purchase: a pending or cancelled one would count as bought (a
  // segment, a promotion earned). Sent when created paid, or when an update marks it paid.
  var status = String(order.status || '').toLowerCase();
  if (status !== '' && PAID.indexOf(status) < 0)
    return 'order ' + id.slice(0, 64) + ' has status ' + status.slice(0, 32) + ': only a ' + PAID.join(' or ') + ' order is sent as order.completed';
  var created = order.created_at ? Date.parse(order.created_at) : Date.now();
  if (!isFinite(created)) created = Date.now();
  var items = Array.isArray(order.items) ? order.items : [];
  var event = {
    id: ulidFor(created, 'order:' + id),
    type: 'track',
    name: 'order.completed',
    timestamp: new Date(created).toISOString(),
    anonymousId: anonymousIdOf(order, id),
    properties: {
      orderId: id,
      total: Number(order.total) || 0,
      currency: order.currency || 'EUR',
      products: items
    },
    context: { library: { name: 'directus-flow', version: '1' } },
    schemaVersion: 1
  };
  if (order.user_id) event.userId = String(order.user_id);
  return event;
}
module.exports = async function (data) {
  var t = data.$trigger || {};
  var ownSite = process.env.ATTUNE_SITE_ID || 'demo';
  // A create's trigger holds the whole order. An update's holds only the fields it changed:
  // the paid-order Flow read the orders it marked paid first (one row, or a list of them).
  var read = data.paid_orders;
  var orders = read === undefined || read === null
    ? [{ id: String(t.key !== undefined ? t.key : (t.payload || {}).id), row: t.payload || {} }]
    : (Array.isArray(read) ? read : [read]).map(function (row) { return { id: String(row.id), row: row }; });
  var batch = [], refused = [];
  for (var i = 0; i < orders.length; i++) {
    var made = orderEventOf(orders[i].row, orders[i].id, ownSite);
    if (typeof made === 'string') refused.push(made);
    else batch.push(made);
  }
  if (batch.length === 0) throw new Error(refused.slice(0, 5).join('; ') || 'no order to send');
  var body = JSON.stringify({ writeKey: process.env.ATTUNE_WRITE_KEY || '', sentAt: new Date().toISOString(), batch: batch });
  // Server-side producers authenticate with the site's server key as the Basic auth username.
  return { body: body, authorization: 'Basic ' + base64((process.env.ATTUNE_SERVER_KEY || '') + ':'), siteId: ownSite };
};
`;

/**
 * The first operation of the paid-order Flow (an action on update of `orders`): whether
 * the update marks orders paid or completed, and which. Anything else (a note edited, a
 * cancellation, an erasure clearing the buyer's ids) ends the run here, sending nothing.
 * An update's trigger holds only the fields it changed, the same for every key it names.
 * One collect request holds at most LIMITS.maxBatchEvents events: so many orders are sent.
 */
export const PAID_UPDATE_SCRIPT = `
var PAID = ${JSON.stringify(PURCHASE_ORDER_STATUSES)};
module.exports = async function (data) {
  var t = data.$trigger || {};
  var status = String((t.payload || {}).status || '').toLowerCase();
  if (PAID.indexOf(status) < 0)
    throw new Error('this update does not mark orders ' + PAID.join(' or ') + ': nothing to send');
  var keys = Array.isArray(t.keys) ? t.keys : t.key !== undefined ? [t.key] : [];
  return { keys: keys.map(function (k) { return String(k); }).slice(0, ${LIMITS.maxBatchEvents}) };
};
`;

// The bounds the edge holds a category's label and description to (none: no bound).
const CONSENT_LABEL = ConsentCategoryConfigSchema.shape.label;
const CONSENT_DESCRIPTION = ConsentCategoryConfigSchema.shape.description;

/**
 * The check of a blocking ("filter") Flow on create and update of `trigger_rules`,
 * `consent_categories`, `products` and `slot_content`: it throws, naming each field and what
 * to write instead, when the edge could not read what is being saved. The edge skips such a
 * row (a trigger rule never fires; a consent category is left out, or a purpose keeps its
 * built-in wording; a product is never recommended; a slot variant without a title or kind
 * is never served, so the page keeps its own content) with a line in the Worker's log the
 * marketer never sees. Field validations cannot say this: they
 * are not applied to a field a create leaves out, and cannot look inside JSON.
 *
 * It refuses exactly what the edge cannot read, no more, as the edge reads it:
 * - trigger rules, products, slot content: packages/edge-worker/src/catalog/source.ts,
 *   TriggerRuleSchema, ProductSchema, SlotVariantSchema (zod; unknown keys are ignored, a
 *   key present must hold its type: null is not "left out"; a product's `price` left out of
 *   a create is Directus's default, 0, and a blank one, which hides the product on purpose, is
 *   let through);
 * - consent categories: packages/edge-worker/src/config/consent-config.ts,
 *   consentConfigFromRows, which checks a row with shared-schema's
 *   ConsentCategoryConfigSchema (a label of 1–128 characters; a description of text up to
 *   2,000 characters; a description that is not text counts as none).
 * write-check.test.mjs holds it to them.
 * A create is judged whole (`on`, `label`, a product's `title`, `slug` and `category`, a slot
 * variant's `slot`, `kind` and `title` are required: Directus's API does not enforce
 * `required` on a field a create leaves out); an update only by the fields it
 * changes (the others were judged when saved). What the field validations of schema.mjs
 * refuse anyway (an `on` that is not an event name, a key, a blank label, a label that is
 * not text) is left to them.
 *
 * Directus stores what it is given: JSON text as that text (parsed when read), and on
 * SQLite numeric text as a number; the edge parses JSON text once more. So a JSON field is
 * judged as the edge gets it, and `enabled` as the boolean Directus reads back.
 */
export const WRITE_CHECK_SCRIPT = `
var CODE_PREFIX = new RegExp(${JSON.stringify(PROMO_CODE_PREFIX_PATTERN.source)});
var LABEL_MIN = ${CONSENT_LABEL.minLength ?? 0};
var LABEL_MAX = ${CONSENT_LABEL.maxLength ?? 'Infinity'};
var DESCRIPTION_MAX = ${CONSENT_DESCRIPTION.maxLength ?? 'Infinity'};

/** A value as a message shows it: long text by its length. */
function shown(v) {
  if (typeof v === 'string' && v.length > 40) return v.length + ' characters';
  var s = JSON.stringify(v);
  if (s === undefined) s = String(v);
  return s.length > 40 ? s.slice(0, 37) + '...' : s;
}
function plainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
function has(row, name) {
  return Object.prototype.hasOwnProperty.call(row, name);
}

/* A rule: ok(value) says whether the edge reads the value; what says what to write. */
function text(max, what) {
  return { ok: function (v) { return typeof v === 'string' && v.length <= max; }, what: what };
}
function pattern(re, what) {
  return { ok: function (v) { return typeof v === 'string' && re.test(v); }, what: what };
}
function number(min, max, opts, what) {
  return {
    ok: function (v) {
      if (typeof v !== 'number' || !isFinite(v) || v > max || (opts.above ? v <= min : v < min)) return false;
      return !opts.whole || Math.floor(v) === v;
    },
    what: what
  };
}
function texts(max, itemMax, what) {
  return {
    ok: function (v) {
      if (!Array.isArray(v) || v.length > max) return false;
      for (var i = 0; i < v.length; i++) if (typeof v[i] !== 'string' || v[i].length > itemMax) return false;
      return true;
    },
    what: what
  };
}
function problem(path, rule, v) {
  return path + ' must be ' + rule.what + ' (got ' + shown(v) + ')';
}
function parsed(v) {
  try {
    return JSON.parse(v);
  } catch (e) {
    return v;
  }
}
/**
 * The problems of a JSON field: empty (null) or an object, given as JSON or as its text,
 * whose keys in fields the edge reads and which has every key of required. Other keys are
 * ignored, as the edge ignores them. Directus parses JSON text when it reads the field (null
 * is then empty); the edge parses text once more, and wants an object of that.
 */
function jsonObject(v, path, fields, required, what) {
  if (typeof v === 'string') v = parsed(v);
  if (v === null) return [];
  if (typeof v === 'string') v = parsed(v);
  if (!plainObject(v)) return [path + ' must be ' + what + ' (got ' + shown(v) + ')'];
  var problems = [];
  for (var r = 0; r < required.length; r++)
    if (!has(v, required[r])) problems.push(path + '.' + required[r] + ' is missing: ' + fields[required[r]].what);
  for (var name in fields)
    if (has(v, name) && !fields[name].ok(v[name])) problems.push(problem(path + '.' + name, fields[name], v[name]));
  return problems;
}

var TAGS = texts(20, 64, 'a list of up to 20 tags of up to 64 characters each, or left out');
var WHEN = {
  category: text(128, 'a category of up to 128 characters, or left out'),
  tags: TAGS
};
var RECOMMEND = {
  categories: texts(20, 128, 'a list of up to 20 categories of up to 128 characters each, or left out'),
  tags: TAGS,
  limit: number(1, 20, { whole: true }, 'a whole number from 1 to 20, or left out')
};
var PROMO = {
  codePrefix: pattern(CODE_PREFIX, '1 to 16 capital letters or digits, such as TRAIL10'),
  discountPercent: number(0, 100, {}, 'a number from 0 to 100'),
  ttlHours: number(0, 24 * 365, { above: true }, 'a number of hours above 0, at most 8760 (a year)'),
  capPerPerson: number(0, 1000, { whole: true }, 'a whole number from 0 to 1000'),
  title: text(200, 'text of up to 200 characters, or left out'),
  body: text(2000, 'text of up to 2000 characters, or left out')
};

/** Whether Directus reads the value back as true, false or empty (SQLite keeps numeric text as a number). */
function readsAsBoolean(v) {
  var n = typeof v === 'string' && v.trim() !== '' && isFinite(Number(v)) ? Number(v) : v;
  return n === true || n === false || n === null || n === '' || n === 0 || n === 1;
}

function triggerRuleProblems(row, creating) {
  var problems = [];
  if (has(row, 'id') && typeof row.id === 'string' && (row.id.length < 1 || row.id.length > 128))
    problems.push('id must be 1 to 128 characters (got ' + row.id.length + ')');
  if (has(row, 'enabled') && !readsAsBoolean(row.enabled))
    problems.push('enabled must be true or false (got ' + shown(row.enabled) + ')');
  if (creating ? row.on === undefined || row.on === null || row.on === '' : has(row, 'on') && (row.on === null || row.on === ''))
    problems.push('on is required: the event that fires the rule, such as cart.item.added');
  else if (typeof row.on === 'string' && row.on.length > 100)
    problems.push('on must be an event name of up to 100 characters (got ' + row.on.length + ')');
  if (has(row, 'when'))
    problems = problems.concat(jsonObject(row.when, 'when', WHEN, [], 'a JSON object such as {"category": "outdoor"}, or empty for every product'));
  if (has(row, 'recommend'))
    problems = problems.concat(jsonObject(row.recommend, 'recommend', RECOMMEND, [], 'a JSON object such as {"categories": ["accessories"], "limit": 3}, or empty to recommend nothing'));
  if (has(row, 'promo'))
    problems = problems.concat(
      jsonObject(row.promo, 'promo', PROMO, ['codePrefix', 'discountPercent', 'ttlHours', 'capPerPerson'], 'a JSON object such as {"codePrefix": "TRAIL10", "discountPercent": 10, "ttlHours": 48, "capPerPerson": 1}, or empty to offer no promo')
    );
  return problems;
}

/** A JSON list of texts (tags), given as JSON or its text, as jsonObject reads an object; empty is none. */
function jsonTexts(v, path, rule) {
  if (typeof v === 'string') v = parsed(v);
  if (v === null) return [];
  if (typeof v === 'string') v = parsed(v);
  return rule.ok(v) ? [] : [problem(path, rule, v)];
}
/** A number as the edge reads it: Number() of what Directus holds (empty is 0), whole if asked. */
function coerced(whole, what) {
  return {
    ok: function (v) {
      var n = Number(v);
      return isFinite(n) && (!whole || Math.floor(n) === n);
    },
    what: what
  };
}
/** Whether a text field the edge needs is missing: left out of a create, or emptied (null) by any write. */
function missing(row, name, creating) {
  return creating ? row[name] === undefined || row[name] === null : has(row, name) && row[name] === null;
}

var PRODUCT_TAGS = texts(50, 64, 'a JSON list of up to 50 tags of up to 64 characters each, such as ["jacket", "waterproof"], or empty');
/*
 * A blank price (empty or null) is let through: the edge and the shop hide a product without
 * a price on purpose (not on sale yet), rather than sell it at 0.00.
 */
var PRICE = {
  ok: function (v) {
    if (v === null || (typeof v === 'string' && v.trim() === '')) return true;
    var n = typeof v === 'string' ? Number(v) : v;
    return typeof n === 'number' && n >= 0;
  },
  what: 'a number of 0 or more, such as 49.9'
};
var CURRENCY = pattern(/^[A-Z]{3}$/, 'three capital letters, such as EUR, or empty for EUR');
var STOCK = coerced(true, 'a whole number, such as 12, or empty for 0');

function productProblems(row, creating) {
  var problems = [];
  var required = { title: 'the name shops and recommendations show', slug: "the product page's address, such as trail-jacket", category: 'the category it is recommended under, such as outdoor' };
  for (var name in required) {
    if (missing(row, name, creating) || (name !== 'title' && row[name] === '')) problems.push(name + ' is required: ' + required[name]);
    else if (typeof row[name] === 'string' && row[name].length > (name === 'title' ? 2000 : 128))
      problems.push(name + ' must be at most ' + (name === 'title' ? 2000 : 128) + ' characters (got ' + row[name].length + ')');
  }
  if (has(row, 'price') && !PRICE.ok(row.price)) problems.push(problem('price', PRICE, row.price));
  if (has(row, 'currency') && row.currency !== null && !CURRENCY.ok(row.currency)) problems.push(problem('currency', CURRENCY, row.currency));
  if (has(row, 'stock') && !STOCK.ok(row.stock)) problems.push(problem('stock', STOCK, row.stock));
  if (has(row, 'tags')) problems = problems.concat(jsonTexts(row.tags, 'tags', PRODUCT_TAGS));
  return problems;
}

var KINDS = ['banner', 'promo', 'recommendations'];
var TARGETS = texts(50, 200, 'a JSON list of up to 50 names of up to 200 characters each, or empty for everyone');
var PRIORITY = coerced(false, 'a number, such as 10, or empty for 0');

function slotVariantProblems(row, creating) {
  var problems = [];
  if (missing(row, 'slot', creating) || row.slot === '') problems.push('slot is required: the data-attune-slot name of the pages it fills, such as hero');
  if (missing(row, 'kind', creating)) problems.push('kind is required: banner, promo or recommendations');
  else if (has(row, 'kind') && KINDS.indexOf(row.kind) < 0) problems.push('kind must be banner, promo or recommendations (got ' + shown(row.kind) + ')');
  if (missing(row, 'title', creating)) problems.push('title is required: the heading the slot shows (over the products, for recommendations)');
  else if (typeof row.title === 'string' && row.title.length > 2000) problems.push('title must be at most 2000 characters (got ' + row.title.length + ')');
  if (typeof row.body === 'string' && row.body.length > 20000) problems.push('body must be at most 20000 characters (got ' + row.body.length + ')');
  if (has(row, 'isDefault') && !readsAsBoolean(row.isDefault)) problems.push('isDefault must be true or false (got ' + shown(row.isDefault) + ')');
  if (has(row, 'priority') && !PRIORITY.ok(row.priority)) problems.push(problem('priority', PRIORITY, row.priority));
  if (has(row, 'targetInterests')) problems = problems.concat(jsonTexts(row.targetInterests, 'targetInterests', TARGETS));
  if (has(row, 'targetSegments')) problems = problems.concat(jsonTexts(row.targetSegments, 'targetSegments', TARGETS));
  return problems;
}

function consentCategoryProblems(row, creating) {
  var problems = [];
  var label = 'the name the consent banner shows, ' + LABEL_MIN + ' to ' + LABEL_MAX + ' characters';
  var missing = creating ? row.label === undefined || row.label === null : has(row, 'label') && row.label === null;
  if (missing || (typeof row.label === 'string' && row.label.length < LABEL_MIN)) problems.push('label is required: ' + label);
  else if (typeof row.label === 'string' && row.label.length > LABEL_MAX)
    problems.push('label must be ' + label + ' (got ' + row.label.length + ')');
  if (typeof row.description === 'string' && row.description.length > DESCRIPTION_MAX)
    problems.push('description must be at most ' + DESCRIPTION_MAX + ' characters (got ' + row.description.length + ')');
  return problems;
}

var CHECKS = {
  products: { problems: productProblems, what: 'product (it would skip it: no recommendation or page would show it)' },
  slot_content: { problems: slotVariantProblems, what: 'slot content (it would skip it: pages would keep their own content)' },
  trigger_rules: { problems: triggerRuleProblems, what: 'trigger rule (it would skip it: the rule would never fire)' },
  consent_categories: {
    problems: consentCategoryProblems,
    what: "consent category (the banner would leave it out, or show a purpose's built-in wording)"
  }
};

module.exports = async function (data) {
  var t = data.$trigger || {};
  var check = CHECKS[String(t.collection || '')];
  var row = t.payload;
  if (!check || !plainObject(row)) return { checked: false };
  var problems = check.problems(row, String(t.event || '').split('.').pop() === 'create');
  if (problems.length === 0) return { checked: true };
  throw new Error('Not saved: the edge could not read this ' + check.what + '. ' + problems.slice(0, 5).join('. ') + '.');
};
`;
