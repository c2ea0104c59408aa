/**
 * POST /attune-sync/events: the queue consumer's bulk write of the event log. One
 * multi-row `INSERT … ON CONFLICT (id) DO NOTHING` per chunk, in one transaction, so a
 * batch costs one request and a few statements instead of Directus's row-by-row item
 * pipeline, and a redelivered event is ignored by the database itself.
 *
 * POST /attune-sync/people: the consumer's write of profile snapshots, each row written
 * only if it is newer than the stored one, compared and written in one transaction. Read
 * by the consumer and written in a later request, two consumer invocations running at once
 * (Queues scale consumers out under a backlog) both read the same stored version, and the
 * older snapshot could land last: a person's withdrawal then left their cleared profile
 * overwritten by the interests and grant before it.
 *
 * POST /attune-sync/erasure-proofs: an erasure's running proof. The consumer opens it
 * before the erasure's first delete and adds each step's count right after the step, so a
 * proof counts what every attempt of a retried erasure deleted, not the last attempt's
 * alone; it closes it (`erased_at`) when the erasure is done. Counts are added in the
 * database (`count + n`, in one transaction), so two deliveries of one erasure at once do
 * not overwrite each other's. A closed proof is left as it is: the attune-sync role may
 * not update `erasure_proofs` through the items API (Directus 12 without a licence cannot
 * narrow that to the counts of an open proof), and this route is all it may change of one.
 *
 * Only the attune-sync role (or an admin) may call it. Rows are validated here: the
 * columns of `events`, ISO times stored as epoch milliseconds and JSON as text, exactly
 * as Directus's own item service stores them.
 */

const SYNC_ROLE = '6f1a2c3e-0000-4000-8000-00000000a002';
const MAX_ROWS = 1000;
const CHUNK = 40; // SQLite binds at most 999 variables per statement: 17 columns × 40 rows.

const EVENT_COLUMNS = {
  id: 'key',
  site_id: 'string',
  person_key: 'string',
  type: 'string',
  name: 'string',
  timestamp: 'time',
  corrected_timestamp: 'time',
  received_at: 'time',
  anonymous_id: 'string',
  user_id: 'string',
  session_id: 'string',
  schema_version: 'int',
  properties: 'json',
  traits: 'json',
  context: 'json',
  enrichment: 'json',
  purposes: 'json',
};

/** What an erasure's proof counts (sync/mapping.ts ErasureProofRow). */
const PROOF_COUNTS = [
  'people_deleted',
  'events_deleted',
  'consent_records_deleted',
  'dead_letters_deleted',
  'orders_anonymized',
];

const PEOPLE_COLUMNS = {
  id: 'key',
  site_id: 'string',
  person_key: 'string',
  version: 'int',
  anonymous_ids: 'json',
  user_id: 'string',
  traits: 'json',
  interests: 'json',
  segments: 'json',
  counters: 'json',
  consent: 'json',
  first_seen: 'time',
  last_seen: 'time',
};

/**
 * Snapshots this far apart are of different lives of a person: the edge numbers a person's
 * versions from 1 again after retention or an erasure's tombstone wiped them. The same rule
 * as the Worker's newerSnapshot (packages/edge-worker/src/sync/mapping.ts).
 */
const LIVES_APART_MS = 60_000;

/** Epoch milliseconds of a stored time (Directus keeps them as numbers on SQLite; a string on other databases). */
function millis(value) {
  if (typeof value === 'number') return value;
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') return /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  return Number.NaN;
}

/** Whether snapshot row `a` replaces `b` (see LIVES_APART_MS): a later life, else the higher version. */
function newerSnapshot(a, b) {
  const after = (x, y) =>
    Number.isFinite(millis(x)) && Number.isFinite(millis(y)) && millis(x) > millis(y) + LIVES_APART_MS;
  if (after(a.first_seen, b.last_seen)) return true;
  if (after(b.first_seen, a.last_seen)) return false;
  return a.version > (b.version ?? 0);
}

function toRow(input, columns) {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return 'expected an object';
  const row = {};
  for (const [column, kind] of Object.entries(columns)) {
    const v = input[column];
    if (v === undefined || v === null) {
      if (kind === 'key') return 'id is required';
      row[column] = null;
      continue;
    }
    if (kind === 'key' || kind === 'string') {
      // A people row's key joins the site and the person key.
      const max = kind === 'key' ? 400 : 300;
      if (typeof v !== 'string' || v.length > max)
        return `${column} must be a string of at most ${max} characters`;
      row[column] = v;
    } else if (kind === 'time') {
      const ms = typeof v === 'string' ? Date.parse(v) : Number.NaN;
      if (!Number.isFinite(ms)) return `${column} must be an ISO date-time`;
      row[column] = ms;
    } else if (kind === 'int') {
      if (!Number.isInteger(v)) return `${column} must be an integer`;
      row[column] = v;
    } else {
      row[column] = JSON.stringify(v);
    }
  }
  return row;
}

function fail(res, status, code, message) {
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

/** Whether the caller is the attune-sync role or an admin; if not, the 403 is sent. */
function isSync(req, res, what) {
  const acc = req.accountability;
  if (acc && (acc.admin === true || acc.role === SYNC_ROLE)) return true;
  fail(res, 403, 'FORBIDDEN', `only the attune-sync role may ${what}`);
  return false;
}

/** The validated rows of a bulk request, or undefined when it was refused (the answer is sent). */
function bulkRows(req, res, columns, what) {
  if (!isSync(req, res, `bulk-write ${what}`)) return undefined;
  if (!Array.isArray(req.body) || req.body.length > MAX_ROWS) {
    fail(res, 400, 'INVALID_PAYLOAD', `expected an array of at most ${MAX_ROWS} ${what} rows`);
    return undefined;
  }
  const rows = [];
  for (const [i, input] of req.body.entries()) {
    const row = toRow(input, columns);
    if (typeof row === 'string') {
      fail(res, 400, 'FAILED_VALIDATION', `row ${i}: ${row}`);
      return undefined;
    }
    rows.push(row);
  }
  return rows;
}

/** Epoch milliseconds of an ISO date-time, or undefined when it is not one. */
function isoMillis(v) {
  const ms = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * A change to an erasure's proof: `{ proof: { id, site_id, reason, requested_at }, add?:
 * { <count>: n }, erasedAt? }` (erasedAt closes it, at Directus's own time), validated; or
 * why it is not one.
 */
function proofChange(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'expected an object';
  const { proof, add = {}, erasedAt } = body;
  if (proof === null || typeof proof !== 'object') return 'proof must be an object';
  if (typeof proof.id !== 'string' || proof.id.length === 0 || proof.id.length > 64)
    return 'proof.id must be a string of 1 to 64 characters';
  if (typeof proof.site_id !== 'string' || proof.site_id.length > 255)
    return 'proof.site_id must be a string of at most 255 characters';
  const reason = proof.reason ?? null;
  if (reason !== null && (typeof reason !== 'string' || reason.length > 16))
    return 'proof.reason must be null or a string of at most 16 characters';
  const requestedAt = isoMillis(proof.requested_at);
  if (requestedAt === undefined) return 'proof.requested_at must be an ISO date-time';
  if (add === null || typeof add !== 'object' || Array.isArray(add)) return 'add must be an object';
  const counts = {};
  for (const [field, n] of Object.entries(add)) {
    if (!PROOF_COUNTS.includes(field))
      return `add.${field}: not a count of the proof (${PROOF_COUNTS.join(', ')})`;
    if (!Number.isSafeInteger(n) || n < 0) return `add.${field} must be a whole number, 0 or more`;
    if (n > 0) counts[field] = n;
  }
  const erased = erasedAt === undefined ? undefined : isoMillis(erasedAt);
  if (erasedAt !== undefined && erased === undefined) return 'erasedAt must be an ISO date-time';
  return {
    row: { id: proof.id, site_id: proof.site_id, reason, requested_at: requestedAt },
    counts,
    erasedAt: erased,
  };
}

/**
 * The rows of `table` with these ids (their `columns`), read 500 ids a statement; with
 * `lock`, locked until the transaction `trx` ends.
 */
async function rowsWithIds(trx, table, columns, ids, lock = false) {
  const found = [];
  for (let i = 0; i < ids.length; i += 500) {
    let read = trx(table)
      .select(...columns)
      .whereIn('id', ids.slice(i, i + 500));
    if (lock) read = read.forUpdate();
    found.push(...(await read));
  }
  return found;
}

export default {
  id: 'attune-sync',
  handler: (router, { database }) => {
    router.post('/events', async (req, res, next) => {
      try {
        const rows = bulkRows(req, res, EVENT_COLUMNS, 'event');
        if (!rows) return;
        let created = 0;
        await database.transaction(async (trx) => {
          const ids = rows.map((r) => r.id);
          const existing = new Set((await rowsWithIds(trx, 'events', ['id'], ids)).map((r) => r.id));
          const unique = new Map();
          for (const r of rows) if (!existing.has(r.id)) unique.set(r.id, r);
          const fresh = [...unique.values()];
          for (let i = 0; i < fresh.length; i += CHUNK) {
            await trx('events')
              .insert(fresh.slice(i, i + CHUNK))
              .onConflict('id')
              .ignore();
          }
          created = fresh.length;
        });
        res.json({ data: { received: rows.length, created } });
      } catch (error) {
        next(error);
      }
    });

    router.post('/people', async (req, res, next) => {
      try {
        const rows = bulkRows(req, res, PEOPLE_COLUMNS, 'people');
        if (!rows) return;
        // Of several snapshots of one person in the request, the newest.
        const incoming = new Map();
        for (const r of rows) {
          const other = incoming.get(r.id);
          if (!other || newerSnapshot(r, other)) incoming.set(r.id, r);
        }
        let created = 0;
        let updated = 0;
        // On SQLite (one connection, one writer) the transaction runs alone; elsewhere the
        // rows read are locked until it ends.
        const locks = !String(database.client.config.client).includes('sqlite');
        await database.transaction(async (trx) => {
          const columns = ['id', 'version', 'first_seen', 'last_seen'];
          const read = await rowsWithIds(trx, 'people', columns, [...incoming.keys()], locks);
          const stored = new Map(read.map((r) => [r.id, r]));
          const fresh = [];
          for (const row of incoming.values()) {
            const held = stored.get(row.id);
            if (!held) fresh.push(row);
            else if (newerSnapshot(row, held)) {
              const { id, ...fields } = row;
              await trx('people').where({ id }).update(fields);
              updated++;
            }
          }
          // 13 columns: well under SQLite's 999 variables a statement at 40 rows.
          for (let i = 0; i < fresh.length; i += CHUNK) {
            await trx('people').insert(fresh.slice(i, i + CHUNK));
          }
          created = fresh.length;
        });
        res.json({ data: { received: rows.length, created, updated } });
      } catch (error) {
        next(error);
      }
    });

    router.post('/erasure-proofs', async (req, res, next) => {
      try {
        if (!isSync(req, res, 'count into erasure proofs')) return;
        const change = proofChange(req.body);
        if (typeof change === 'string') {
          fail(res, 400, 'FAILED_VALIDATION', change);
          return;
        }
        const { id } = change.row;
        // Answers whether the proof was closed before this request (then nothing changed).
        let closed = false;
        const locks = !String(database.client.config.client).includes('sqlite');
        await database.transaction(async (trx) => {
          // Opened by whichever request comes first: its site, reason and request time stay.
          const open = { ...change.row, erased_at: null };
          for (const field of PROOF_COUNTS) open[field] = 0;
          await trx('erasure_proofs').insert(open).onConflict('id').ignore();
          let read = trx('erasure_proofs').select('erased_at').where({ id });
          if (locks) read = read.forUpdate();
          const [stored] = await read;
          // Inserted above: gone only if deleted meanwhile. The consumer tries again.
          if (stored === undefined) throw new Error(`erasure proof ${id} vanished while being counted`);
          if (stored.erased_at !== null) {
            closed = true;
            return;
          }
          const update = {};
          for (const [field, n] of Object.entries(change.counts))
            update[field] = trx.raw('coalesce(??, 0) + ?', [field, n]);
          // Closed at Directus's own time, not the caller's: the proof says when it was done.
          if (change.erasedAt !== undefined) update.erased_at = Date.now();
          if (Object.keys(update).length > 0)
            await trx('erasure_proofs').where({ id }).whereNull('erased_at').update(update);
        });
        res.json({ data: { closed } });
      } catch (error) {
        next(error);
      }
    });
  },
};
