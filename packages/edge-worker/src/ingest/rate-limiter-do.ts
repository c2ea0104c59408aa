/**
 * A token-bucket rate limiter per client key (IP hash, anonymousId), one object per
 * key; the same class also keeps the outcome counters behind /v1/admin/stats (one
 * object named `stats`), because both are small per-key counters.
 */
import { DurableObject } from 'cloudflare:workers';

export interface TakeResult {
  allowed: boolean;
  /** Seconds until a token is available again (when not allowed). */
  retryAfterSeconds: number;
}

export class RateLimiterDO extends DurableObject<Env> {
  // Buckets are kept in memory: a limiter that forgets on eviction only errs towards allowing.
  #tokens = -1;
  #updatedAt = 0;

  /** Takes `cost` tokens from a bucket refilled at `perSecond` up to `burst`; says whether it could. */
  async take(cost: number, perSecond: number, burst: number): Promise<TakeResult> {
    const now = Date.now();
    if (this.#tokens < 0) this.#tokens = burst;
    else this.#tokens = Math.min(burst, this.#tokens + ((now - this.#updatedAt) / 1000) * perSecond);
    this.#updatedAt = now;
    if (this.#tokens >= cost) {
      this.#tokens -= cost;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    const missing = cost - this.#tokens;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(missing / perSecond)) };
  }

  /** Adds outcome counts (stats object only). */
  async addCounts(counts: Record<string, number>): Promise<void> {
    const current = (await this.ctx.storage.get<Record<string, number>>('counts')) ?? {};
    for (const [key, n] of Object.entries(counts)) current[key] = (current[key] ?? 0) + n;
    await this.ctx.storage.put('counts', current);
  }

  /** The outcome counts so far (stats object only). */
  async readCounts(): Promise<Record<string, number>> {
    return (await this.ctx.storage.get<Record<string, number>>('counts')) ?? {};
  }
}
