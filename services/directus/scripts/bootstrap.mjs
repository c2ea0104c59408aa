#!/usr/bin/env node
/**
 * Bootstraps a local Directus instance, idempotently, and leaves it running:
 *  1. installs Directus if needed (install.mjs);
 *  2. writes `.env` once (random SECRET, TELEMETRY=false, SQLite in data/, 127.0.0.1);
 *  3. runs `directus bootstrap` (database + admin user);
 *  4. applies Attune's schema (schema.mjs) over the REST API: creates what is missing;
 *  5. creates the least-privilege `attune-sync` role/policy and its user with a static
 *     token, written with DIRECTUS_URL, HOOK_SECRET and ATTUNE_SITE_SECRETS (holding the
 *     server key the order Flow sends) to data/worker.dev.vars; and the
 *     read-only `attune-shop` role/policy (read products, nothing else) and its user with
 *     a static token, written with DIRECTUS_URL to data/shop.env for the demo shop;
 *  6. (re)creates the Flows: cache invalidation → Worker /v1/hooks/directus (HMAC-signed),
 *     orders created paid, or marked paid by an update → Worker /v1/collect
 *     (order.completed, the same event either way; their runs are logged without their
 *     data, and the data runs of an earlier bootstrap stored is deleted), and the blocking
 *     check that refuses a trigger rule or consent category the edge could not read.
 *
 * Environment (all optional): ATTUNE_DIRECTUS_HOME, ATTUNE_DIRECTUS_PORT, ATTUNE_WORKER_URL
 * (default http://127.0.0.1:8787), ATTUNE_HOOK_SECRET / ATTUNE_SYNC_TOKEN (default: the
 * repo's .dev.vars HOOK_SECRET / DIRECTUS_TOKEN, else the earlier run's, else random),
 * ATTUNE_SERVER_KEY (default: the site's serverKey in .dev.vars, else the earlier run's, else
 * random; a value from a file is taken only if the Worker would take it, see secrets.mjs),
 * ATTUNE_SITE_ID (default demo), ATTUNE_SHOP_TOKEN (default: the one in data/shop.env, else
 * random), ATTUNE_ADMIN_EMAIL / ATTUNE_ADMIN_PASSWORD.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  INVALIDATION_SCRIPT,
  ORDER_SCRIPT,
  PAID_UPDATE_SCRIPT,
  WRITE_CHECK_SCRIPT,
} from './flow-scripts.mjs';
import {
  adminClient,
  adminToken,
  DIRECTUS_BIN,
  directusInstalled,
  directusProcessEnv,
  ensureDir,
  instance,
  log,
  PROJECT_DIR,
  REPO_ROOT,
  randomSecret,
  readEnvFile,
  require,
} from './lib.mjs';
import { COLLECTIONS, EDGE_CACHED_COLLECTIONS } from './schema.mjs';
import {
  chooseSecret,
  chooseServerKey,
  MIN_SECRET_CHARS,
  usableSecret,
  workerSiteSecrets,
} from './secrets.mjs';
import { startServer, stopServer } from './server.mjs';

const SYNC_EMAIL = 'attune-sync@example.com';
const SHOP_EMAIL = 'attune-shop@example.com';
/**
 * What the demo shop's server reads (examples/nextjs-shop/lib/catalog.ts): the catalog, and
 * only that. The shop's token must not reach people, events, consent records or dead
 * letters, which the Worker's attune-sync token can read and delete.
 */
export const SHOP_READS = ['products'];
// Fixed ids make every step an upsert: re-running bootstrap finds its own objects.
const IDS = {
  policy: '6f1a2c3e-0000-4000-8000-00000000a001',
  role: '6f1a2c3e-0000-4000-8000-00000000a002',
  shopPolicy: '6f1a2c3e-0000-4000-8000-00000000a003',
  shopRole: '6f1a2c3e-0000-4000-8000-00000000a004',
  invalidationFlow: '6f1a2c3e-0000-4000-8000-00000000f001',
  invalidationSign: '6f1a2c3e-0000-4000-8000-00000000f011',
  invalidationSend: '6f1a2c3e-0000-4000-8000-00000000f012',
  marketerPolicy: '6f1a2c3e-0000-4000-8000-00000000a005',
  marketerRole: '6f1a2c3e-0000-4000-8000-00000000a006',
  privacyPolicy: '6f1a2c3e-0000-4000-8000-00000000a007',
  privacyRole: '6f1a2c3e-0000-4000-8000-00000000a008',
  orderFlow: '6f1a2c3e-0000-4000-8000-00000000f002',
  orderBuild: '6f1a2c3e-0000-4000-8000-00000000f021',
  orderSend: '6f1a2c3e-0000-4000-8000-00000000f022',
  writeCheckFlow: '6f1a2c3e-0000-4000-8000-00000000f003',
  paidOrderFlow: '6f1a2c3e-0000-4000-8000-00000000f004',
  paidOrderCheck: '6f1a2c3e-0000-4000-8000-00000000f041',
  paidOrderRead: '6f1a2c3e-0000-4000-8000-00000000f042',
  paidOrderBuild: '6f1a2c3e-0000-4000-8000-00000000f043',
  paidOrderSend: '6f1a2c3e-0000-4000-8000-00000000f044',
  writeCheck: '6f1a2c3e-0000-4000-8000-00000000f031',
  writeRefuse: '6f1a2c3e-0000-4000-8000-00000000f032',
};

/** The collections whose rows the edge skips when it cannot read them, checked as they are written. */
const WRITE_CHECKED_COLLECTIONS = ['trigger_rules', 'consent_categories', 'products', 'slot_content'];

/** The repo's .dev.vars (the Worker's local secrets), so Directus and the Worker agree. */
function workerDevVars() {
  return readEnvFile(join(REPO_ROOT, '.dev.vars'));
}

/** ATTUNE_SITE_SECRETS of the repo's .dev.vars, parsed ({} when absent or not JSON). */
function devSiteSecrets() {
  try {
    return JSON.parse(workerDevVars().ATTUNE_SITE_SECRETS ?? '{}');
  } catch {
    return {};
  }
}

/** Says so when an ATTUNE_* variable sets a secret the Worker refuses (it is used as asked). */
function warnIfRefused(name) {
  const value = process.env[name];
  if (value && !usableSecret(value))
    log(`${name} is under ${MIN_SECRET_CHARS} characters: the Worker refuses it (use a long random value)`);
}

function writeEnv(inst) {
  const prev = readEnvFile(inst.envFile);
  const dev = workerDevVars();
  const siteId = process.env.ATTUNE_SITE_ID || prev.ATTUNE_SITE_ID || 'demo';
  warnIfRefused('ATTUNE_HOOK_SECRET');
  warnIfRefused('ATTUNE_SERVER_KEY');
  const env = {
    HOST: '127.0.0.1',
    PORT: String(inst.port),
    PUBLIC_URL: inst.url,
    SECRET: prev.SECRET ?? randomSecret(),
    TELEMETRY: 'false',
    DB_CLIENT: 'sqlite3',
    DB_FILENAME: join(inst.dataDir, 'directus.db'),
    STORAGE_LOCATIONS: 'local',
    STORAGE_LOCAL_ROOT: join(inst.home, 'uploads'),
    EXTENSIONS_PATH: join(inst.home, 'extensions'),
    ADMIN_EMAIL: process.env.ATTUNE_ADMIN_EMAIL ?? prev.ADMIN_EMAIL ?? 'admin@example.com',
    ADMIN_PASSWORD: process.env.ATTUNE_ADMIN_PASSWORD ?? prev.ADMIN_PASSWORD ?? 'attune-local-admin',
    CACHE_ENABLED: 'false',
    RATE_LIMITER_ENABLED: 'false',
    // The pressure limiter answers 503 when the event loop lags, which a shared 2-core dev box does.
    PRESSURE_LIMITER_ENABLED: 'false',
    WEBSOCKETS_ENABLED: 'false',
    LOG_LEVEL: 'warn',
    MAX_PAYLOAD_SIZE: '10mb',
    // Flows call the Worker on 127.0.0.1, which Directus's default deny list blocks.
    IMPORT_IP_DENY_LIST: '169.254.169.254',
    FLOWS_ENV_ALLOW_LIST:
      'ATTUNE_HOOK_SECRET,ATTUNE_WORKER_URL,ATTUNE_SERVER_KEY,ATTUNE_WRITE_KEY,ATTUNE_SITE_ID',
    ATTUNE_WORKER_URL: process.env.ATTUNE_WORKER_URL ?? prev.ATTUNE_WORKER_URL ?? 'http://127.0.0.1:8787',
    // The Worker refuses hooks signed with a secret under 16 characters (a placeholder such as
    // the example file's change-me): such a value from .dev.vars, or one an older bootstrap
    // kept in .env, is not taken.
    ATTUNE_HOOK_SECRET: chooseSecret({
      explicit: process.env.ATTUNE_HOOK_SECRET,
      candidates: [dev.HOOK_SECRET, prev.ATTUNE_HOOK_SECRET],
      generate: randomSecret,
    }),
    ATTUNE_WRITE_KEY: process.env.ATTUNE_WRITE_KEY ?? prev.ATTUNE_WRITE_KEY ?? 'pk_demo_attune',
    // The site whose keys the order Flow holds: it sends that site's orders only.
    ATTUNE_SITE_ID: siteId,
    // Kept here, so the next run keeps it; the Worker gets it through data/worker.dev.vars.
    // Never a placeholder: the Worker refuses a server key under 16 characters, and every
    // order the Flow sent would be a 401.
    ATTUNE_SERVER_KEY: chooseServerKey({
      explicit: process.env.ATTUNE_SERVER_KEY,
      siteSecrets: devSiteSecrets(),
      siteId,
      previous: prev.ATTUNE_SERVER_KEY,
    }),
  };
  ensureDir(inst.dataDir);
  ensureDir(join(inst.home, 'uploads'));
  ensureDir(join(inst.home, 'extensions'));
  // Attune's endpoint extension (bulk event-log insert); an instance elsewhere gets a copy.
  const ours = join(PROJECT_DIR, 'extensions', 'attune-sync');
  if (resolve(inst.home) !== resolve(PROJECT_DIR))
    cpSync(ours, join(inst.home, 'extensions', 'attune-sync'), { recursive: true });
  // Directus looks for package extensions in its working directory's package.json.
  if (!existsSync(join(inst.home, 'package.json')))
    writeFileSync(
      join(inst.home, 'package.json'),
      '{ "name": "attune-directus-instance", "private": true }\n',
    );
  const text = `# Written by services/directus/scripts/bootstrap.mjs (local use only; not committed).\n${Object.entries(
    env,
  )
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n`;
  const changed = !existsSync(inst.envFile) || readFileSync(inst.envFile, 'utf8') !== text;
  writeFileSync(inst.envFile, text, { mode: 0o600 });
  return { env, changed };
}

function runDirectusBootstrap(inst) {
  const r = spawnSync(process.execPath, [DIRECTUS_BIN, 'bootstrap'], {
    cwd: inst.home,
    env: directusProcessEnv(inst),
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`directus bootstrap failed:\n${r.stdout}\n${r.stderr}`);
}

function collectionMeta(def) {
  const meta = { icon: def.icon, note: def.note };
  // accountability null: Directus keeps no activity/revisions for the collection.
  if ('accountability' in def) meta.accountability = def.accountability;
  return meta;
}

async function applyCollections(api) {
  for (const def of COLLECTIONS) {
    const existing = await api.find(`/collections/${def.collection}`);
    if (!existing) {
      await api.post('/collections', {
        collection: def.collection,
        meta: collectionMeta(def),
        schema: {},
        fields: def.fields,
      });
      log(`created collection ${def.collection}`);
      continue;
    }
    await api.patch(`/collections/${def.collection}`, { meta: collectionMeta(def) });
    const fields = (await api.get(`/fields/${def.collection}`)) ?? [];
    const have = new Map(fields.map((f) => [f.field, f]));
    for (const field of def.fields) {
      const current = have.get(field.field);
      if (current !== undefined) {
        // An existing field gets the current meta (notes, validation, dropdown choices): an
        // instance bootstrapped before a rule was added would otherwise never enforce it. Its
        // column (type, length, default) is left as it is, but for a missing index: an access
        // request or an erasure looks a person up by it, and without it scans the table.
        const addIndex = field.schema?.is_indexed === true && current.schema?.is_indexed === false;
        await api.patch(`/fields/${def.collection}/${field.field}`, {
          meta: field.meta,
          ...(addIndex && { schema: { is_indexed: true } }),
        });
        if (addIndex) log(`indexed field ${def.collection}.${field.field}`);
        continue;
      }
      await api.post(`/fields/${def.collection}`, field);
      log(`added field ${def.collection}.${field.field}`);
    }
  }
}

async function upsert(api, collection, id, body) {
  const existing = await api.find(`/${collection}/${id}`);
  if (existing) return api.patch(`/${collection}/${id}`, body);
  return api.post(`/${collection}`, { id, ...body });
}

/**
 * One least-privilege role in Directus: its policy and role, linked, the policy's
 * permissions replaced wholesale (a narrowed list narrows the policy too). `appAccess`: the
 * role's people sign in to the Data Studio (Directus adds the app's minimal permissions).
 */
async function applyRole(api, { policy, role, name, icon, policyNote, roleNote, permissions, appAccess }) {
  await upsert(api, 'policies', policy, {
    name,
    icon,
    description: policyNote,
    admin_access: false,
    app_access: appAccess,
  });
  await upsert(api, 'roles', role, { name, icon, description: roleNote });
  const access = (await api.get(`/access?filter[role][_eq]=${role}&filter[policy][_eq]=${policy}`)) ?? [];
  if (access.length === 0) await api.post('/access', { role, policy });

  const current = (await api.get(`/permissions?filter[policy][_eq]=${policy}&limit=-1&fields=id`)) ?? [];
  if (current.length > 0)
    await api.del(
      '/permissions',
      current.map((p) => p.id),
    );
  await api.post(
    '/permissions',
    permissions.map(({ collection, action }) => ({
      policy,
      collection,
      action,
      fields: ['*'],
      permissions: {},
      validation: {},
    })),
  );
}

/** A machine's access: its role (no app access) and its user, created or updated with `token`. */
async function applyAccess(api, { email, lastName, token, role, ...rest }) {
  await applyRole(api, { role, ...rest, appAccess: false });
  const users = (await api.get(`/users?filter[email][_eq]=${encodeURIComponent(email)}&fields=id`)) ?? [];
  if (users.length === 0) {
    await api.post('/users', {
      email,
      first_name: 'Attune',
      last_name: lastName,
      role,
      token,
      status: 'active',
    });
  } else {
    await api.patch(`/users/${users[0].id}`, { role, token, status: 'active' });
  }
}

async function applySyncAccess(api, env) {
  await applyAccess(api, {
    policy: IDS.policy,
    role: IDS.role,
    name: 'attune-sync',
    icon: 'sync',
    policyNote:
      "The edge Worker's access: write the event log, profiles and consent proof; read the catalog; read orders and clear an erased buyer's ids on them; write erasure proofs and lift reports.",
    roleNote: 'The edge Worker (least privilege)',
    email: SYNC_EMAIL,
    lastName: 'edge sync',
    permissions: COLLECTIONS.flatMap((c) => c.sync.map((action) => ({ collection: c.collection, action }))),
    token: env.syncToken,
  });
  return env.syncToken;
}

/**
 * The attune-shop policy: read the collections in SHOP_READS, nothing else (no app access,
 * no writes). Its user's static token is what the demo shop sends as DIRECTUS_TOKEN.
 */
async function applyShopAccess(api, shopToken) {
  await applyAccess(api, {
    policy: IDS.shopPolicy,
    role: IDS.shopRole,
    name: 'attune-shop',
    icon: 'storefront',
    policyNote: "The demo shop's server: read the catalog (products), nothing else.",
    roleNote: 'The demo shop (read-only catalog)',
    email: SHOP_EMAIL,
    lastName: 'demo shop',
    permissions: SHOP_READS.map((collection) => ({ collection, action: 'read' })),
    token: shopToken,
  });
}

/** What a marketer edits: the catalog, slot content, trigger rules and consent categories. */
export const MARKETER_EDITS = ['products', 'slot_content', 'trigger_rules', 'consent_categories'];
/** What a marketer reads and changes none of: how personalization does (counts, never who). */
export const MARKETER_READS = ['lift_reports'];
/** What a privacy officer reads to prove consent and answer requests; they change none of it. */
export const PRIVACY_READS = [
  'consent_records',
  // What each policy version a consent record names said.
  'policy_versions',
  'erasure_proofs',
  'people',
  'events',
  'dead_letters',
  'consent_categories',
  // What an access request lists, and what an erasure leaves of a buyer's orders.
  'orders',
];

/**
 * The roles for people (no users: invite them in Directus and give them a role). Marketers
 * change what the edge serves and never see a person's data; privacy officers read the
 * proof of consent and erasure and change none of it (erasure itself goes through the
 * Worker's DELETE /v1/people/:id, which reaches the edge and Directus alike).
 */
async function applyPeopleRoles(api) {
  await applyRole(api, {
    policy: IDS.marketerPolicy,
    role: IDS.marketerRole,
    name: 'Attune marketer',
    icon: 'campaign',
    policyNote:
      'Edit products, slot content, trigger rules and consent categories; read lift reports; no personal data.',
    roleNote: 'Marketers: what the edge serves, never who',
    permissions: [
      ...MARKETER_EDITS.flatMap((collection) =>
        ['create', 'read', 'update', 'delete'].map((action) => ({ collection, action })),
      ),
      { collection: 'sites', action: 'read' },
      ...MARKETER_READS.map((collection) => ({ collection, action: 'read' })),
    ],
    appAccess: true,
  });
  await applyRole(api, {
    policy: IDS.privacyPolicy,
    role: IDS.privacyRole,
    name: 'Attune privacy officer',
    icon: 'policy',
    policyNote: 'Read consent records, erasure proofs, profiles, the event log and orders; change nothing.',
    roleNote: 'Privacy officers: prove consent and erasure (read-only)',
    permissions: PRIVACY_READS.map((collection) => ({ collection, action: 'read' })),
    appAccess: true,
  });
}

/** Where bootstrap writes the shop's DIRECTUS_URL and DIRECTUS_TOKEN (read by scripts/up.mjs). */
export function shopVarsFile(inst) {
  return join(inst.dataDir, 'shop.env');
}

/**
 * The attune-shop user's static token: ATTUNE_SHOP_TOKEN, else the one an earlier bootstrap
 * wrote, else a new random one. Never the attune-sync token (the shop would get its access).
 */
function chooseShopToken(inst, syncToken) {
  const chosen = process.env.ATTUNE_SHOP_TOKEN || readEnvFile(shopVarsFile(inst)).DIRECTUS_TOKEN;
  if (chosen && chosen !== syncToken) return chosen;
  if (chosen === syncToken) log('ATTUNE_SHOP_TOKEN equals the attune-sync token; using a new random one');
  return randomSecret();
}

async function recreateFlow(api, flow, ops) {
  if (await api.find(`/flows/${flow.id}`)) await api.del(`/flows/${flow.id}`);
  for (const op of ops) if (await api.find(`/operations/${op.id}`)) await api.del(`/operations/${op.id}`);
  await api.post('/flows', { ...flow, operation: null });
  // Create the chain back to front so each `resolve` and `reject` points at an existing operation.
  for (const op of [...ops].reverse()) await api.post('/operations', { ...op, flow: flow.id });
  await api.patch(`/flows/${flow.id}`, { operation: ops[0]?.id ?? null });
}

async function applyFlows(api) {
  await recreateFlow(
    api,
    {
      id: IDS.invalidationFlow,
      name: 'Attune: invalidate edge caches',
      icon: 'cached',
      color: '#2ECDA7',
      description:
        'Tells the Worker (signed, HMAC-SHA256) that catalog, slot content, rules or consent categories changed.',
      status: 'active',
      trigger: 'event',
      accountability: 'all',
      options: {
        type: 'action',
        scope: ['items.create', 'items.update', 'items.delete'],
        collections: EDGE_CACHED_COLLECTIONS,
      },
    },
    [
      {
        id: IDS.invalidationSign,
        name: 'Sign',
        key: 'sign',
        type: 'exec',
        position_x: 19,
        position_y: 1,
        options: { code: INVALIDATION_SCRIPT },
        resolve: IDS.invalidationSend,
      },
      {
        id: IDS.invalidationSend,
        name: 'Notify Worker',
        key: 'notify',
        type: 'request',
        position_x: 37,
        position_y: 1,
        options: {
          method: 'POST',
          url: '{{$env.ATTUNE_WORKER_URL}}/v1/hooks/directus',
          headers: [
            { header: 'Content-Type', value: 'application/json' },
            { header: 'X-Attune-Signature', value: '{{sign.signature}}' },
          ],
          body: '{{sign.body}}',
        },
      },
    ],
  );
  // 'activity' logs that a Flow ran (when, triggered by whom) and nothing more. 'all'
  // would also keep each run's data chain and rendered options as a revision: the order's
  // user and browser ids and items (which erasure never reaches) and the Authorization
  // header, whose base64 server key Directus does not redact (it redacts only
  // `headers.authorization` keys and verbatim env values).
  await recreateFlow(
    api,
    {
      id: IDS.orderFlow,
      name: 'Attune: order.completed to the edge',
      icon: 'shopping_cart_checkout',
      color: '#3399FF',
      description: "Sends each new order to the Worker's server-side ingest as an order.completed event.",
      status: 'active',
      trigger: 'event',
      accountability: 'activity',
      options: { type: 'action', scope: ['items.create'], collections: ['orders'] },
    },
    [orderBuildOperation(IDS.orderBuild, IDS.orderSend, 1), orderSendOperation(IDS.orderSend, 1)],
  );
  // An order created pending and paid later (bank transfer, invoice, a payment webhook):
  // the create sent nothing. A call of this Flow that is lost, the Worker's catch-up makes
  // up for by the order's `date_updated`.
  await recreateFlow(
    api,
    {
      id: IDS.paidOrderFlow,
      name: 'Attune: paid order to the edge',
      icon: 'price_check',
      color: '#3399FF',
      description:
        "Sends an order to the Worker's server-side ingest as an order.completed event when an update marks it paid or completed (the same event as on create: counted once).",
      status: 'active',
      trigger: 'event',
      accountability: 'activity',
      options: { type: 'action', scope: ['items.update'], collections: ['orders'] },
    },
    [
      {
        id: IDS.paidOrderCheck,
        name: 'Marks paid?',
        key: 'paid',
        type: 'exec',
        position_x: 19,
        position_y: 1,
        options: { code: PAID_UPDATE_SCRIPT },
        resolve: IDS.paidOrderRead,
      },
      {
        // The trigger holds only the changed fields: the event needs the whole order.
        id: IDS.paidOrderRead,
        name: 'Read orders',
        key: 'paid_orders',
        type: 'item-read',
        position_x: 37,
        position_y: 1,
        // Whoever marked the orders paid (a payment webhook's token, an editor) may not read them all.
        options: { collection: 'orders', key: '{{paid.keys}}', permissions: '$full', emitEvents: false },
        resolve: IDS.paidOrderBuild,
      },
      orderBuildOperation(IDS.paidOrderBuild, IDS.paidOrderSend, 55),
      orderSendOperation(IDS.paidOrderSend, 73),
    ],
  );
}

/** The Run Script operation building the order.completed event(s) of an order Flow. */
function orderBuildOperation(id, send, x) {
  return {
    id,
    name: 'Build event',
    key: 'order_event',
    type: 'exec',
    position_x: x,
    position_y: 1,
    options: { code: ORDER_SCRIPT },
    resolve: send,
  };
}

/** The Request operation POSTing what orderBuildOperation built to the Worker's ingest. */
function orderSendOperation(id, x) {
  return {
    id,
    name: 'Send to Worker',
    key: 'send',
    type: 'request',
    position_x: x,
    position_y: 1,
    options: {
      method: 'POST',
      url: '{{$env.ATTUNE_WORKER_URL}}/v1/collect',
      headers: [
        { header: 'Content-Type', value: 'text/plain' },
        { header: 'Authorization', value: '{{order_event.authorization}}' },
      ],
      body: '{{order_event.body}}',
    },
  };
}

/**
 * The blocking Flow that refuses a trigger rule, consent category, product or slot variant the edge could not read
 * (WRITE_CHECK_SCRIPT says what and why). A filter Flow's run that ends in a rejected
 * operation fails the write with that operation's error, and Directus answers a plain Error
 * (the script's throw) as 500 "An unexpected error occurred." to anyone but an admin: so the
 * script's rejection goes on to a Throw Error operation, which fails the write as a 400
 * INVALID_PAYLOAD with the script's message, the fields and what to write.
 */
async function applyWriteCheckFlow(api) {
  await recreateFlow(
    api,
    {
      id: IDS.writeCheckFlow,
      name: 'Attune: refuse what the edge would skip',
      icon: 'rule',
      color: '#E35169',
      description:
        "Refuses a trigger rule, consent category, product or slot variant the edge could not read (it would skip it, with a line in the Worker's log alone), naming the field and what to write.",
      status: 'active',
      trigger: 'event',
      // A check has nothing to record: the write it lets through is logged as usual.
      accountability: null,
      // `filter`: runs before the write and can refuse it. No `return`: the payload is kept as sent.
      options: {
        type: 'filter',
        scope: ['items.create', 'items.update'],
        collections: WRITE_CHECKED_COLLECTIONS,
      },
    },
    [
      {
        id: IDS.writeCheck,
        name: 'Check',
        key: 'check',
        type: 'exec',
        position_x: 19,
        position_y: 1,
        options: { code: WRITE_CHECK_SCRIPT },
        reject: IDS.writeRefuse,
      },
      {
        id: IDS.writeRefuse,
        name: 'Refuse',
        key: 'refuse',
        type: 'throw-error',
        position_x: 37,
        position_y: 17,
        options: { code: 'INVALID_PAYLOAD', status: '400', message: '{{$last.message}}' },
      },
    ],
  );
}

/**
 * Deletes the revisions that runs of the order Flow left while it kept them (accountability
 * 'all' before): each holds an order's ids and items and the server key in base64; and the
 * revisions of every collection that keeps none now (`accountability` null or 'activity'
 * in schema.mjs: people, events, consent records, dead letters, orders…), which an earlier
 * schema kept: copies of a person's data that their erasure would never reach. Directus
 * has no API to delete revisions, so this goes to the SQLite file (Directus may be running:
 * a busy timeout waits out its writes). The activity rows stay: they hold no data.
 */
async function forgetStoredCopies(dbFile) {
  const sqlite3 = require('sqlite3');
  const db = await new Promise((ok, fail) => {
    const handle = new sqlite3.Database(dbFile, sqlite3.OPEN_READWRITE, (e) => (e ? fail(e) : ok(handle)));
  });
  try {
    db.configure('busyTimeout', 10_000);
    const deleted = await new Promise((ok, fail) =>
      db.run(
        `DELETE FROM directus_revisions WHERE collection = 'directus_flows' AND item = ?
           AND activity IN (SELECT id FROM directus_activity WHERE action = 'run')`,
        [IDS.orderFlow],
        function done(e) {
          if (e) fail(e);
          else ok(this.changes);
        },
      ),
    );
    if (deleted > 0) log(`deleted ${deleted} stored run(s) of the order Flow (they held the server key)`);
    for (const { collection } of COLLECTIONS.filter((def) => 'accountability' in def)) {
      // A revision saved with them in one request points at one as its parent: unlink it first.
      await new Promise((ok, fail) =>
        db.run(
          `UPDATE directus_revisions SET parent = NULL
             WHERE parent IN (SELECT id FROM directus_revisions WHERE collection = ?)`,
          [collection],
          (e) => (e ? fail(e) : ok()),
        ),
      );
      const copies = await new Promise((ok, fail) =>
        db.run(`DELETE FROM directus_revisions WHERE collection = ?`, [collection], function done(e) {
          if (e) fail(e);
          else ok(this.changes);
        }),
      );
      if (copies > 0) log(`deleted ${copies} stored revision(s) of ${collection} (copies of its rows)`);
    }
  } finally {
    await new Promise((ok) => db.close(() => ok()));
  }
}

/**
 * The attune-sync user's static token: ATTUNE_SYNC_TOKEN, else the Worker's DIRECTUS_TOKEN
 * in the repository's .dev.vars (so `./attune up` needs no copying), else the token of an
 * earlier bootstrap, else a new random one; from a file, only a token of 16 characters or more.
 */
function chooseSyncToken(inst) {
  return chooseSecret({
    explicit: process.env.ATTUNE_SYNC_TOKEN,
    // A short one (the example's change-me) would be a guessable token of a user who reads
    // every visitor's rows.
    candidates: [workerDevVars().DIRECTUS_TOKEN, readEnvFile(inst.workerVarsFile).DIRECTUS_TOKEN],
    generate: randomSecret,
  });
}

/**
 * data/worker.dev.vars: what the Worker's .dev.vars needs to agree with this Directus. Its
 * ATTUNE_SITE_SECRETS is the one of .dev.vars with the server key the order Flow sends, so
 * copying the lines over makes the Worker take that key (nothing changes when .dev.vars
 * already had it, as `./attune up` arranges).
 */
function workerVarsText(inst, env, syncToken) {
  const siteSecrets = workerSiteSecrets({
    siteSecrets: devSiteSecrets(),
    siteId: env.ATTUNE_SITE_ID,
    serverKey: env.ATTUNE_SERVER_KEY,
  });
  return [
    "# For the Worker's .dev.vars (written by services/directus/scripts/bootstrap.mjs)",
    `DIRECTUS_URL=${inst.url}`,
    `DIRECTUS_TOKEN=${syncToken}`,
    `HOOK_SECRET=${env.ATTUNE_HOOK_SECRET}`,
    // Quoted as scripts/up.mjs writes it: dotenv readers would cut an unquoted value at ' #'.
    `ATTUNE_SITE_SECRETS='${JSON.stringify(siteSecrets)}'`,
    '',
  ].join('\n');
}

/** A fingerprint of everything bootstrap applies, so an unchanged instance is skipped fast. */
function fingerprint(env, syncToken, shopToken) {
  const h = createHash('sha256');
  h.update(readFileSync(new URL('./schema.mjs', import.meta.url)));
  h.update(readFileSync(new URL('./flow-scripts.mjs', import.meta.url)));
  // As applied: their patterns and limits come from shared-schema, which may change alone.
  h.update(JSON.stringify(COLLECTIONS));
  h.update(WRITE_CHECK_SCRIPT);
  h.update(readFileSync(new URL(import.meta.url)));
  h.update(readFileSync(new URL('../extensions/attune-sync/index.js', import.meta.url)));
  h.update(JSON.stringify(env));
  h.update(syncToken);
  h.update(shopToken);
  return h.digest('hex');
}

/** Bootstraps (idempotently) and leaves the instance running. */
export async function bootstrap(inst = instance()) {
  if (!directusInstalled()) {
    const r = spawnSync(process.execPath, [join(PROJECT_DIR, 'scripts', 'install.mjs')], {
      stdio: 'inherit',
    });
    if (r.status !== 0) throw new Error('directus install failed');
  }
  const { env, changed } = writeEnv(inst);
  // A running server keeps the configuration it started with: restart it on a change.
  if (changed) await stopServer(inst);
  const marker = join(inst.dataDir, 'bootstrapped');
  const syncToken = chooseSyncToken(inst);
  const shopToken = chooseShopToken(inst, syncToken);
  const print = fingerprint(env, syncToken, shopToken);
  if (
    existsSync(marker) &&
    readFileSync(marker, 'utf8') === print &&
    existsSync(inst.workerVarsFile) &&
    existsSync(shopVarsFile(inst))
  ) {
    // Rewritten all the same: the site secrets it copies from .dev.vars may have changed.
    writeFileSync(inst.workerVarsFile, workerVarsText(inst, env, syncToken), { mode: 0o600 });
    await startServer(inst);
    log('schema up to date');
    return;
  }
  // Something changed (schema, flows, extension): restart so the server loads all of it.
  await stopServer(inst);
  runDirectusBootstrap(inst);
  await startServer(inst);
  const api = adminClient(inst, await adminToken(inst));
  await applyCollections(api);
  await applySyncAccess(api, { syncToken });
  await applyShopAccess(api, shopToken);
  await applyPeopleRoles(api);
  await applyFlows(api);
  await applyWriteCheckFlow(api);
  await forgetStoredCopies(env.DB_FILENAME);
  writeFileSync(inst.workerVarsFile, workerVarsText(inst, env, syncToken), { mode: 0o600 });
  writeFileSync(
    shopVarsFile(inst),
    `# For the demo shop's server (written by services/directus/scripts/bootstrap.mjs): read-only catalog access\nDIRECTUS_URL=${inst.url}\nDIRECTUS_TOKEN=${shopToken}\n`,
    { mode: 0o600 },
  );
  writeFileSync(marker, print);
  log(`bootstrapped ${inst.url} (admin ${env.ADMIN_EMAIL}); Worker vars in ${inst.workerVarsFile}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await bootstrap();
}
