/**
 * Retry policy: which answers are worth retrying, and when. Exponential backoff with
 * full jitter (a random delay between 0 and min(cap, base·2^attempt)) spreads a crowd of
 * browsers that failed together; a server's Retry-After always wins.
 */
export const RETRY_BASE_MS = 1000;
export const RETRY_CAP_MS = 60_000;

/** Whether a collect status is worth retrying (408, 429, 5xx: RETRYABLE_STATUS); other 4xx are final. */
export const isRetryable = (status: number): boolean => status === 408 || status === 429 || status > 499;

/** Delay before retry number `attempt` (0-based): full jitter under an exponential cap. */
export const backoffDelay = (attempt: number): number =>
  // |0 floors it (non-negative and under 2^31).
  (Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** attempt)) | 0;

/** Milliseconds a Retry-After header asks for (delta-seconds or HTTP date), or undefined. */
export function retryAfterMs(header?: string | null): number | undefined {
  // Delta-seconds, else a date ("0" reads as a date long past, which means "now" too);
  // no header reads as neither (NaN: Date.parse("null") is NaN too).
  const ms = +(header as string) * 1000 || Date.parse(header as string) - Date.now();
  // A date in the past means "now"; an unreadable header means "use backoff".
  return ms < 0 ? 0 : ms >= 0 ? ms : undefined;
}

/** Delay before the next attempt: Retry-After when the server sent one, else backoff. */
export const retryDelay = (attempt: number, retryAfter?: string | null): number =>
  retryAfterMs(retryAfter) ?? backoffDelay(attempt);
