/**
 * CovisitationDO: "viewed next" item-to-item transition counts, one object per item shard
 * (see covisitation.ts for the sharding). Written from the queue consumer in aggregated
 * batches, read by decisions — never on the ingest hot path. Each source product keeps at
 * most MAX_NEXT_PER_ITEM successors, so a shard stays small however long it lives.
 *
 * Counting is idempotent per queue message: a shard remembers the ids of the messages it
 * has counted for APPLIED_WINDOW_MS, and counts a message it remembers no more. A batch
 * whose write failed in another shard is redelivered whole; before, the shards that had
 * counted it added its pairs again on every redelivery (up to the queue's 100 retries).
 */
import { DurableObject } from 'cloudflare:workers';

/** One aggregated transition: `count` people viewed `to` right after `from`. */
export interface Transition {
  from: string;
  to: string;
  count: number;
}

export interface NextItem {
  to: string;
  count: number;
}

/** The transitions one queue message brings to a shard, under that message's id. */
export interface CountedMessage {
  messageId: string;
  transitions: Transition[];
}

/** Successors kept per source product (the long tail is never recommended anyway). */
export const MAX_NEXT_PER_ITEM = 200;

/**
 * How long a shard remembers a message it counted: longer than the EVENTS queue redelivers
 * a message (100 retries, at most 15 minutes apart: about a day), and no longer, so the
 * memory stays bounded by three days of traffic.
 */
export const APPLIED_WINDOW_MS = 3 * 24 * 60 * 60 * 1000;

export class CovisitationDO extends DurableObject<Env> {
  #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(
      `CREATE TABLE IF NOT EXISTS covisits (
         from_id TEXT NOT NULL, to_id TEXT NOT NULL, count INTEGER NOT NULL,
         PRIMARY KEY (from_id, to_id)) WITHOUT ROWID`,
    );
    this.#sql.exec(
      'CREATE TABLE IF NOT EXISTS applied (message_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID',
    );
    this.#sql.exec('CREATE INDEX IF NOT EXISTS applied_at ON applied (at)');
  }

  /**
   * Adds the transition counts of the messages this shard has not counted yet (a message
   * counted within APPLIED_WINDOW_MS is skipped); returns how many source products were touched.
   */
  async record(messages: CountedMessage[]): Promise<number> {
    const touched = new Set<string>();
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec('DELETE FROM applied WHERE at < ?', now - APPLIED_WINDOW_MS);
      const transitions: Transition[] = [];
      for (const m of messages) {
        // Claimed in one statement (as the ProfileDO claims event ids), in the same transaction
        // as the counts: a message is counted and remembered, or neither.
        const claimed = this.#sql
          .exec(
            'INSERT OR IGNORE INTO applied (message_id, at) VALUES (?, ?) RETURNING message_id',
            m.messageId,
            now,
          )
          .toArray();
        if (claimed.length > 0) transitions.push(...m.transitions);
      }
      for (const t of transitions) {
        if (!(t.count > 0) || t.from === t.to) continue;
        this.#sql.exec(
          `INSERT INTO covisits (from_id, to_id, count) VALUES (?, ?, ?)
           ON CONFLICT (from_id, to_id) DO UPDATE SET count = count + excluded.count`,
          t.from,
          t.to,
          Math.floor(t.count),
        );
        touched.add(t.from);
      }
      for (const from of touched) {
        const row = this.#sql
          .exec<{ n: number }>('SELECT COUNT(*) AS n FROM covisits WHERE from_id = ?', from)
          .one();
        if (row.n > MAX_NEXT_PER_ITEM * 1.25) {
          this.#sql.exec(
            `DELETE FROM covisits WHERE from_id = ? AND to_id NOT IN
               (SELECT to_id FROM covisits WHERE from_id = ? ORDER BY count DESC, to_id LIMIT ?)`,
            from,
            from,
            MAX_NEXT_PER_ITEM,
          );
        }
      }
    });
    return touched.size;
  }

  /** The products most often viewed next after each of `froms`, most frequent first. */
  async nextOf(froms: string[], limit: number): Promise<Record<string, NextItem[]>> {
    const out: Record<string, NextItem[]> = {};
    const capped = Math.max(1, Math.min(limit, MAX_NEXT_PER_ITEM));
    for (const from of froms.slice(0, 20)) {
      out[from] = this.#sql
        .exec<{ to_id: string; count: number }>(
          'SELECT to_id, count FROM covisits WHERE from_id = ? ORDER BY count DESC, to_id LIMIT ?',
          from,
          capped,
        )
        .toArray()
        .map((r) => ({ to: r.to_id, count: r.count }));
    }
    return out;
  }
}
