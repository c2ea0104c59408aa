/** A token-bucket rate limiter per client key (IP hash, anonymousId), one object per key. */
import { DurableObject } from 'cloudflare:workers';

export class RateLimiterDO extends DurableObject<Env> {}
