/**
 * Token-bucket rate limiting: one object per client IP (hashed with a daily salt), whose
 * tokens isolates lease in small blocks (see rate-limit.ts). The same class also keeps the outcome counters behind /v1/admin/stats (one object named
 * `stats`), because both are small counters keyed by name.
 */
import { DurableObject } from 'cloudflare:workers';

/** One bucket to take a token from: its key, refill rate per second, and burst size. */
export interface BucketRequest {
  key: string;
  perSecond: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Buckets kept per object; the least recently used go first (a forgotten bucket starts full). */
const MAX_BUCKETS = 10_000;

export class RateLimiterDO extends DurableObject<Env> {
  // Buckets live in memory: a limiter that forgets on eviction only errs towards allowing.
  #buckets = new Map<string, Bucket>();

  /**
   * Leases up to `want` tokens from one bucket at once, so an isolate can spend them
   * locally instead of calling per request; returns how many were granted (0: retry later,
   * when the bucket holds fewer than `min`: nothing is taken for a request it cannot pay).
   */
  async lease(
    request: BucketRequest,
    want: number,
    min = 1,
  ): Promise<{ granted: number; retryAfterSeconds: number }> {
    const now = Date.now();
    const old = this.#buckets.get(request.key);
    const tokens = old
      ? Math.min(request.burst, old.tokens + ((now - old.updatedAt) / 1000) * request.perSecond)
      : request.burst;
    const granted = tokens >= min ? Math.max(0, Math.min(want, Math.floor(tokens))) : 0;
    this.#buckets.delete(request.key);
    this.#buckets.set(request.key, { tokens: tokens - granted, updatedAt: now });
    // A Map iterates oldest first: drop the least recently used buckets over the bound.
    while (this.#buckets.size > MAX_BUCKETS) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done) break;
      this.#buckets.delete(oldest.value);
    }
    const retryAfterSeconds = granted > 0 ? 0 : Math.max(1, Math.ceil((min - tokens) / request.perSecond));
    return { granted, retryAfterSeconds };
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
