/**
 * Time budgets: waiting on work that may be slow, or may never settle (a read the runtime
 * cancelled with the request that started it), without waiting on it for good.
 */

/** Runs `work` but gives up after `ms`, yielding `fallback` (the work keeps running, its result is ignored). */
export async function withinBudget<T>(work: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work.catch(() => fallback),
      new Promise<T>((resolve) => {
        timer = setTimeout(() => resolve(fallback), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
