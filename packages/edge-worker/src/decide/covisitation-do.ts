/**
 * CovisitationDO: "viewed next" item-to-item transition counts, one object per item shard
 * (see covisitation.ts for the sharding). Written from the queue consumer in aggregated
 * batches, read by decisions — never on the ingest hot path. Each source product keeps at
 * most MAX_NEXT_PER_ITEM successors, so a shard stays small however long it lives.
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

/** Successors kept per source product (the long tail is never recommended anyway). */
export const MAX_NEXT_PER_ITEM = 200;

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
  }

  /** Adds transition counts; returns how many rows were touched. */
  async record(transitions: Transition[]): Promise<number> {
    const touched = new Set<string>();
    this.ctx.storage.transactionSync(() => {
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
