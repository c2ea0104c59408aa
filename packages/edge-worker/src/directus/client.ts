/**
 * A small fetch-based Directus REST client for the Worker: bulk create, update, upsert
 * and delete on items, with typed errors that say whether trying again can help
 * (network, 5xx, 429, 408, and 401/403 which no single item causes) or not (other 4xx:
 * validation, unknown collection).
 */

import { logOnce } from '../observability/index.ts';

/** A Directus filter object, e.g. `{ id: { _in: ['a', 'b'] } }`. */
export type DirectusFilter = Record<string, unknown>;

export interface ItemQuery {
  filter?: DirectusFilter;
  fields?: string[];
  sort?: string[];
  /** -1 = no limit. */
  limit?: number;
  offset?: number;
}

/**
 * A change to an erasure's proof, made by Attune's endpoint extension
 * (`POST /attune-sync/erasure-proofs`): the proof is opened if missing, `add` is added to its
 * counts and `erasedAt` closes it, unless it is closed already.
 */
export interface ErasureProofChange {
  /** The proof as it is opened: its key, site, reason and request time, never changed after. */
  proof: { id: string; site_id: string; reason: string | null; requested_at: string };
  /** Added to the proof's counts: `events_deleted`, `orders_anonymized`, … */
  add?: Record<string, number>;
  /**
   * Closes the proof: the erasure is done. The route checks it is a time but stamps the
   * proof with its own clock (a caller's time could predate the request).
   */
  erasedAt?: string;
}

export interface DirectusConfig {
  url: string;
  token: string;
  /** Injected for tests of pure logic; the Worker uses the global fetch. */
  fetch?: typeof fetch;
  /** Gives up on a call after this long (a Directus that hangs must not hold a request forever). */
  timeoutMs?: number;
}

/** Why a Directus call failed, and whether retrying the same call may succeed. */
export class DirectusError extends Error {
  override readonly name = 'DirectusError';
  /** HTTP status, or 0 when Directus could not be reached. */
  readonly status: number;
  /** Directus's own error code (`RECORD_NOT_UNIQUE`, `FORBIDDEN`, …) when it gave one. */
  readonly code: string | undefined;
  readonly retryable: boolean;

  constructor(message: string, status: number, code: string | undefined, retryable: boolean) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryable = retryable;
  }

  /** The write collided with an existing primary key (a concurrent or earlier write). */
  get conflict(): boolean {
    return this.code === 'RECORD_NOT_UNIQUE';
  }
}

/**
 * `text` (a DirectusError's message) for a log line: without the values Directus quotes in
 * its own messages (`Value "<value>" for field …`, `Numeric value "…"`, `Invalid foreign key
 * "…"`), which for the sync's writes are person keys and user ids (an email, often). The
 * field and collection names stay: they say what to fix. A dead letter kept in Directus keeps
 * the whole message; Workers Logs are not where people's ids may be kept.
 */
export function withoutQuotedValues(text: string): string {
  return text.replace(/\b(value|key) "(?:[^"\\]|\\.)*"/gi, '$1 "…"');
}

/**
 * Why a queue consumer retried, for its batch's log line: the error's message (a
 * DirectusError's names no query), without the values Directus quotes, at most 300 characters.
 */
export function retryCause(e: unknown): string {
  return withoutQuotedValues(e instanceof Error ? e.message : String(e)).slice(0, 300);
}

/** Whether Directus refused outright (a 4xx other than the retryable ones): trying again will not help. */
export function isPermanent(e: unknown): e is DirectusError {
  return e instanceof DirectusError && !e.retryable;
}

/**
 * Whether a failed call may succeed when tried again. 401/403 count as retryable: a bad
 * token or policy concerns every item, so the sync waits for an operator's fix instead of
 * dead-lettering the whole stream.
 */
export function isRetryableStatus(status: number): boolean {
  return (
    status === 0 || status === 401 || status === 403 || status === 408 || status === 429 || status >= 500
  );
}

/** Directus answers `{ errors: [{ message, extensions: { code } }] }`. */
function describeFailure(body: unknown): { message: string; code?: string } {
  if (body !== null && typeof body === 'object' && 'errors' in body && Array.isArray(body.errors)) {
    const first: unknown = body.errors[0];
    if (first !== null && typeof first === 'object') {
      const message =
        'message' in first && typeof first.message === 'string' ? first.message : 'unknown error';
      const ext = 'extensions' in first ? first.extensions : undefined;
      const code =
        ext !== null && typeof ext === 'object' && 'code' in ext && typeof ext.code === 'string'
          ? ext.code
          : undefined;
      return code === undefined ? { message } : { message, code };
    }
  }
  return { message: 'unexpected response' };
}

/** Past this, a read's query goes in a SEARCH request's body instead of the URL. */
const LONG_QUERY_CHARS = 4_000;

function queryString(query: ItemQuery): string {
  const params = new URLSearchParams();
  if (query.filter) params.set('filter', JSON.stringify(query.filter));
  if (query.fields) params.set('fields', query.fields.join(','));
  if (query.sort) params.set('sort', query.sort.join(','));
  if (query.limit !== undefined) params.set('limit', String(query.limit));
  if (query.offset !== undefined) params.set('offset', String(query.offset));
  const s = params.toString();
  return s ? `?${s}` : '';
}

export type DirectusClient = ReturnType<typeof directusClient>;

/** A client bound to one Directus instance and token. */
export function directusClient(config: DirectusConfig) {
  const base = config.url.replace(/\/+$/, '');
  const absoluteBase = /^https?:\/\/[^/]/i.test(base);
  const doFetch = config.fetch ?? fetch;

  async function request<T>(method: string, path: string, body?: unknown): Promise<T | undefined> {
    // Errors name the path without its query: a read's filter names people (person keys,
    // user ids), and these messages reach logs and an access request's 502 answer.
    const bare = path.split('?')[0] ?? path;
    // Not fetched: a relative URL would be resolved against whatever the runtime takes as
    // the base, reaching some other server. An outage to the callers (retried, answered 502).
    if (!absoluteBase)
      throw new DirectusError(
        `Directus unreachable (${method} ${bare}): DIRECTUS_URL ${JSON.stringify(base.slice(0, 100))} is not an http(s) URL`,
        0,
        undefined,
        true,
      );
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${config.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(config.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(config.timeoutMs) }),
      });
    } catch (e) {
      // The runtime's message may quote the URL it could not load (`Fetch API cannot load: …`).
      const reason = (e instanceof Error ? e.message : String(e)).replace(/\?[^\s'")]*/g, '');
      throw new DirectusError(`Directus unreachable (${method} ${bare}): ${reason}`, 0, undefined, true);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const { message, code } = describeFailure(parsed);
      throw new DirectusError(
        `Directus ${method} ${bare} → ${res.status}: ${message}`,
        res.status,
        code,
        isRetryableStatus(res.status),
      );
    }
    if (parsed !== null && typeof parsed === 'object' && 'data' in parsed) return parsed.data as T;
    return undefined;
  }

  const items = (collection: string) => `/items/${encodeURIComponent(collection)}`;
  /** Whether the instance has each route of the attune-sync endpoint extension (absent: not asked yet). */
  const extensionRoutes = new Map<string, boolean>();
  /**
   * POSTs `body` to a route of the attune-sync extension: its answer's data, or undefined
   * when the instance has no such route (one set up before it), and the caller writes
   * through the items API instead.
   */
  async function viaExtension<T>(
    route: string,
    body: readonly object[] | object,
  ): Promise<{ data: T | undefined } | undefined> {
    if (extensionRoutes.get(route) === false) return undefined;
    try {
      const data = await request<T>('POST', `/attune-sync/${route}`, body);
      extensionRoutes.set(route, true);
      return { data };
    } catch (e) {
      if (!(e instanceof DirectusError && e.status === 404 && !extensionRoutes.has(route))) throw e;
      extensionRoutes.set(route, false);
      return undefined;
    }
  }

  const client = {
    /**
     * Reads items matching a query; a long one (an erasure's or an access request's person
     * keys: up to 200 browsers of 128-character ids) goes in the body of a SEARCH request,
     * which Directus reads as it reads a GET's query string. In a URL it was refused (431,
     * Node's 16 KB header limit; 414 behind a proxy with a smaller one).
     */
    async readItems<T>(collection: string, query: ItemQuery = {}): Promise<T[]> {
      const search = queryString(query);
      if (search.length <= LONG_QUERY_CHARS)
        return (await request<T[]>('GET', `${items(collection)}${search}`)) ?? [];
      return (await request<T[]>('SEARCH', items(collection), { query })) ?? [];
    },

    /** Every item matching `query`, read `pageSize` at a time (sort the query for a stable order). */
    async readAll<T>(
      collection: string,
      query: Omit<ItemQuery, 'limit' | 'offset'>,
      pageSize = 500,
    ): Promise<T[]> {
      const rows: T[] = [];
      for (let offset = 0; ; offset += pageSize) {
        const page = await client.readItems<T>(collection, { ...query, limit: pageSize, offset });
        rows.push(...page);
        if (page.length < pageSize) return rows;
      }
    },

    /** Creates items in one request (all or nothing: Directus wraps it in a transaction). */
    async createItems(collection: string, rows: readonly object[], pkField = 'id'): Promise<void> {
      if (rows.length === 0) return;
      await request('POST', `${items(collection)}?fields=${encodeURIComponent(pkField)}`, rows);
    },

    /** Updates items in one request; each row carries its primary key. */
    async updateItems(collection: string, rows: readonly object[], pkField = 'id'): Promise<void> {
      if (rows.length === 0) return;
      await request('PATCH', `${items(collection)}?fields=${encodeURIComponent(pkField)}`, rows);
    },

    /** Deletes items by primary key in one request. */
    async deleteItems(collection: string, keys: readonly string[]): Promise<void> {
      if (keys.length === 0) return;
      await request('DELETE', items(collection), keys);
    },

    /** Which of these primary keys exist already (one request). */
    async existingKeys(collection: string, keys: readonly string[], pkField = 'id'): Promise<Set<string>> {
      if (keys.length === 0) return new Set();
      const rows = await client.readItems<Record<string, unknown>>(collection, {
        filter: { [pkField]: { _in: keys } },
        fields: [pkField],
        limit: -1,
      });
      return new Set(rows.map((r) => String(r[pkField])));
    },

    /**
     * Creates the rows whose key does not exist yet, in one request, and ignores the
     * rest: a redelivered row is a no-op. A concurrent writer racing us is resolved by
     * checking again once. Returns how many rows were created.
     */
    async createMissing(
      collection: string,
      rows: readonly Record<string, unknown>[],
      pkField = 'id',
    ): Promise<number> {
      for (let attempt = 0; ; attempt++) {
        const have = await client.existingKeys(
          collection,
          rows.map((r) => String(r[pkField])),
          pkField,
        );
        const missing = rows.filter((r) => !have.has(String(r[pkField])));
        try {
          await client.createItems(collection, missing, pkField);
          return missing.length;
        } catch (e) {
          if (e instanceof DirectusError && e.conflict && attempt === 0) continue;
          throw e;
        }
      }
    },

    /**
     * Writes event-log rows through Attune's endpoint extension (`POST /attune-sync/events`:
     * one multi-row insert that ignores existing ids), falling back to createMissing when
     * the extension is not installed. Returns how many rows were new.
     */
    async insertEvents(rows: readonly Record<string, unknown>[]): Promise<number> {
      if (rows.length === 0) return 0;
      const written = await viaExtension<{ created?: number }>('events', rows);
      return written ? (written.data?.created ?? 0) : client.createMissing('events', rows);
    },

    /**
     * Writes people rows through Attune's endpoint extension (`POST /attune-sync/people`):
     * each row only if it is newer than the stored one (the extension's `newerSnapshot`, the
     * rule of sync/mapping.ts), compared and written in one transaction. Returns how many rows
     * were created or updated; undefined when the extension has no such route (an instance
     * set up before it), and the caller compares and writes itself.
     */
    async writeNewerPeople(rows: readonly object[]): Promise<number | undefined> {
      if (rows.length === 0) return 0;
      const written = await viaExtension<{ created?: number; updated?: number }>('people', rows);
      return written && (written.data?.created ?? 0) + (written.data?.updated ?? 0);
    },

    /**
     * Deletes every item matching a filter, page by page, and returns how many went.
     * (Paging by key keeps each request small whatever the number of rows.) `onPage` hears
     * of each page once it is deleted, before the next is read: what went before a failure
     * part-way is known although this throws.
     */
    async deleteWhere(
      collection: string,
      filter: DirectusFilter,
      {
        pkField = 'id',
        pageSize = 500,
        onPage,
      }: { pkField?: string; pageSize?: number; onPage?: (deleted: number) => Promise<void> } = {},
    ): Promise<number> {
      let deleted = 0;
      for (;;) {
        const rows = await client.readItems<Record<string, unknown>>(collection, {
          filter,
          fields: [pkField],
          limit: pageSize,
        });
        if (rows.length === 0) return deleted;
        await client.deleteItems(
          collection,
          rows.map((r) => String(r[pkField])),
        );
        deleted += rows.length;
        await onPage?.(rows.length);
        if (rows.length < pageSize) return deleted;
      }
    },

    /**
     * Opens, counts into or closes an erasure's proof (see ErasureProofChange) through
     * Attune's endpoint extension, in one transaction: the database adds the counts, so two
     * callers at once do not overwrite each other's, and a closed proof is left as it is.
     * Returns whether the proof was closed before this call; undefined when the extension
     * has no such route (an instance set up before it: the attune-sync role may only create
     * proofs there).
     */
    async changeErasureProof(change: ErasureProofChange): Promise<boolean | undefined> {
      const answer = await viaExtension<{ closed?: boolean }>('erasure-proofs', change);
      return answer && answer.data?.closed === true;
    },

    /**
     * Sets `data` on every item matching a filter, in one request, and returns how many were
     * changed. Directus updates by query (`PATCH /items/:collection` with `{ query, data }`) and
     * answers with the items it updated: asked for their keys alone, with no limit (its default
     * of 100 would cut the list short, and the count with it).
     */
    async updateWhere(
      collection: string,
      filter: DirectusFilter,
      data: Record<string, unknown>,
      pkField = 'id',
    ): Promise<number> {
      const updated = await request<unknown[]>(
        'PATCH',
        `${items(collection)}?fields=${encodeURIComponent(pkField)}&limit=-1`,
        { query: { filter, limit: -1 }, data },
      );
      return updated?.length ?? 0;
    },

    /** Whether Directus answers its health check. */
    async healthy(): Promise<boolean> {
      try {
        const res = await doFetch(`${base}/server/health`);
        return res.ok;
      } catch {
        return false;
      }
    },
  };
  return client;
}

/**
 * How long a call of the queue consumers, the cron and replays waits for Directus by
 * default. Without a limit, a Directus that takes the connection and never answers held a
 * consumer's batch until the runtime ended the invocation, which then redelivered the whole
 * batch at once, without the consumer's backoff (a timeout is an outage: retried with it).
 * A bulk write of 1,000 event rows takes well under a second on SQLite.
 */
export const DIRECTUS_DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The client the Worker uses: DIRECTUS_URL with the least-privilege DIRECTUS_TOKEN. Either
 * may be missing on a deployment (a var moved to a secret never set, a secret never put):
 * then every call fails as Directus being unreachable or refusing, which callers already
 * retry or answer, and one line per isolate says which setting is missing. Before, a
 * missing DIRECTUS_URL threw here, ahead of any message being settled, so the queue
 * dropped every message after its retries, the dead-letter queue's as well.
 */
export function directusFromEnv(
  env: Pick<Env, 'DIRECTUS_URL' | 'DIRECTUS_TOKEN'>,
  options: Pick<DirectusConfig, 'timeoutMs'> = {},
): DirectusClient {
  // Typed as wrangler.toml declares them; the deployed Worker's env may still lack them.
  const url: unknown = env.DIRECTUS_URL;
  const token: unknown = env.DIRECTUS_TOKEN;
  if (typeof url !== 'string' || url.trim() === '')
    logOnce(
      'DIRECTUS_URL:unset',
      'error',
      'DIRECTUS_URL is unset: no Directus call can be made (the sync retries, the catalog and consent categories are not read); set it in wrangler.toml [vars]',
    );
  if (typeof token !== 'string' || token === '')
    logOnce(
      'DIRECTUS_TOKEN:unset',
      'error',
      "DIRECTUS_TOKEN is unset: Directus refuses every call; set the attune-sync user's static token with wrangler secret put DIRECTUS_TOKEN",
    );
  return directusClient({
    url: typeof url === 'string' ? url : '',
    token: typeof token === 'string' ? token : '',
    timeoutMs: DIRECTUS_DEFAULT_TIMEOUT_MS,
    ...options,
  });
}
