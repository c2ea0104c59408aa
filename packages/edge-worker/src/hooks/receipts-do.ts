/**
 * HookReceiptsDO: the receipts of the Directus hooks the edge has accepted, so that a
 * captured hook replayed within its signature window is refused (hooks/routes.ts). One
 * object (`directus`) holds them all: hooks come at the pace of a marketer's edits, so one
 * object is never busy, and only one object can answer "seen before?" exactly — KV is
 * eventually consistent (a replay racing the first write to another location would pass),
 * and an isolate's memory is not shared (a replay landing on another isolate would pass).
 * A receipt is kept until its hook's timestamp is out of the window: after that the
 * timestamp check refuses the hook anyway, so the table holds at most one window of hooks.
 */
import { DurableObject } from 'cloudflare:workers';

/** The name of the one object every hook asks. */
export const HOOK_RECEIPTS_OBJECT = 'directus';

export class HookReceiptsDO extends DurableObject<Env> {
  #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec(
      'CREATE TABLE IF NOT EXISTS receipts (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID',
    );
    this.#sql.exec('CREATE INDEX IF NOT EXISTS receipts_expiry ON receipts (expires_at)');
  }

  /**
   * Takes the receipt `id` until `expiresAt` (epoch ms): true the first time, false while
   * it is held (a replay, or the same hook still being applied by another request).
   */
  async claim(id: string, expiresAt: number): Promise<boolean> {
    // One statement, and a Durable Object runs one call's synchronous code at a time: of
    // replays sent together, exactly one finds the receipt free.
    this.#sql.exec('DELETE FROM receipts WHERE expires_at <= ?', Date.now());
    const taken = this.#sql
      .exec('INSERT OR IGNORE INTO receipts (id, expires_at) VALUES (?, ?) RETURNING id', id, expiresAt)
      .toArray();
    return taken.length > 0;
  }

  /** Gives a receipt back: its hook could not take effect, and Directus may send it again. */
  async release(id: string): Promise<void> {
    this.#sql.exec('DELETE FROM receipts WHERE id = ?', id);
  }
}
