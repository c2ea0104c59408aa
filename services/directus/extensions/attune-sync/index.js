/**
 * POST /attune-sync/events: the queue consumer's bulk write of the event log. One
 * multi-row `INSERT … ON CONFLICT (id) DO NOTHING` per chunk, in one transaction, so a
 * batch costs one request and a few statements instead of Directus's row-by-row item
 * pipeline, and a redelivered event is ignored by the database itself.
 *
 * Only the attune-sync role (or an admin) may call it. Rows are validated here: the
 * columns of `events`, ISO times stored as epoch milliseconds and JSON as text, exactly
 * as Directus's own item service stores them.
 */

const SYNC_ROLE = '6f1a2c3e-0000-4000-8000-00000000a002';
const MAX_ROWS = 1000;
const CHUNK = 40; // SQLite binds at most 999 variables per statement: 17 columns × 40 rows.

const COLUMNS = {
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

function toRow(input) {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return 'expected an object';
  const row = {};
  for (const [column, kind] of Object.entries(COLUMNS)) {
    const v = input[column];
    if (v === undefined || v === null) {
      if (kind === 'key') return 'id is required';
      row[column] = null;
      continue;
    }
    if (kind === 'key' || kind === 'string') {
      if (typeof v !== 'string' || v.length > 300)
        return `${column} must be a string of at most 300 characters`;
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

export default {
  id: 'attune-sync',
  handler: (router, { database }) => {
    router.post('/events', async (req, res, next) => {
      try {
        const acc = req.accountability;
        if (!acc || !(acc.admin === true || acc.role === SYNC_ROLE)) {
          return fail(res, 403, 'FORBIDDEN', 'only the attune-sync role may bulk-write events');
        }
        if (!Array.isArray(req.body) || req.body.length > MAX_ROWS) {
          return fail(res, 400, 'INVALID_PAYLOAD', `expected an array of at most ${MAX_ROWS} event rows`);
        }
        const rows = [];
        for (const [i, input] of req.body.entries()) {
          const row = toRow(input);
          if (typeof row === 'string') return fail(res, 400, 'FAILED_VALIDATION', `row ${i}: ${row}`);
          rows.push(row);
        }
        let created = 0;
        await database.transaction(async (trx) => {
          const ids = rows.map((r) => r.id);
          const existing = new Set();
          for (let i = 0; i < ids.length; i += 500) {
            for (const r of await trx('events')
              .select('id')
              .whereIn('id', ids.slice(i, i + 500)))
              existing.add(r.id);
          }
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
  },
};
