/** HookReceiptsDO: a receipt is taken once, can be given back, and is forgotten once its window is over. */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';

function ledger() {
  return env.HOOK_RECEIPTS.get(env.HOOK_RECEIPTS.idFromName(`test-${crypto.randomUUID()}`));
}

describe('HookReceiptsDO', () => {
  it('takes a receipt once; a released one can be taken again', async () => {
    const receipts = ledger();
    const until = Date.now() + 60_000;
    expect(await receipts.claim('2026-11-28T05:20:00.000Z abc', until)).toBe(true);
    expect(await receipts.claim('2026-11-28T05:20:00.000Z abc', until)).toBe(false);
    expect(await receipts.claim('2026-11-28T05:20:00.000Z abd', until)).toBe(true);
    await receipts.release('2026-11-28T05:20:00.000Z abc');
    expect(await receipts.claim('2026-11-28T05:20:00.000Z abc', until)).toBe(true);
  });

  it('forgets receipts whose window is over (the table holds one window of hooks, not all of them)', async () => {
    const receipts = ledger();
    expect(await receipts.claim('old', Date.now() - 1)).toBe(true);
    // Pruned by the next claim: a hook that old is refused by its timestamp anyway.
    expect(await receipts.claim('old', Date.now() + 60_000)).toBe(true);
  });
});
