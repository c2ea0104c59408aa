/**
 * The proof of one erasure, kept while the erasure runs, so that it counts everything the
 * erasure deleted and not only what its last attempt did. An erasure that fails part-way
 * (Directus failing on a later step) is retried, and the retry finds the earlier steps'
 * rows gone: a proof written at the end with that attempt's counts said `events_deleted: 0`
 * of a person whose events the first attempt deleted.
 *
 * - Opened in Directus before the erasure's first delete (`erased_at` empty: under way),
 *   counted into right after each step, page by page, and closed (`erased_at` set) once
 *   every step is done. A retry opens the same proof (keyed by the erasure id) and adds to
 *   what the earlier attempts counted.
 * - The counting is Directus's (the attune-sync extension, POST /attune-sync/erasure-proofs):
 *   it adds in the database, so two deliveries of one erasure at once add up rather than
 *   overwrite each other, and it leaves a closed proof as it is: a delivery of an erasure
 *   whose proof is closed (its ack was lost) does nothing, and `erased_at` never moves.
 * - What it cannot count: rows whose delete Directus did but whose answer never came (or
 *   whose count could not be added after it: the erasure is retried, and that count is
 *   lost). Two deliveries at once: each row goes once, so it is counted once, except when
 *   both delete the same page at the same moment (Directus checks the keys, then deletes
 *   them, not in one transaction): then it can be counted twice. The first to finish closes
 *   the proof, and what the other deletes after that is not counted (rows written meanwhile).
 * - An instance without the extension's route (set up before it, bootstrap not run again)
 *   lets the attune-sync role create proofs only: there the proof is written once, when the
 *   erasure is done, with what that attempt did, as before.
 */
import { type DirectusClient, isPermanent } from '../directus/client.ts';
import type { ErasureProofRow } from './mapping.ts';

/** What a proof counts. */
export type ProofCount =
  | 'people_deleted'
  | 'events_deleted'
  | 'consent_records_deleted'
  | 'dead_letters_deleted'
  | 'orders_anonymized';

/** The part of a proof fixed when it is opened: which erasure, where, why, when asked. */
export type ProofIdentity = Pick<ErasureProofRow, 'id' | 'site_id' | 'reason' | 'requested_at'>;

/** An open proof, counted into as the erasure goes. */
export interface ErasureProof {
  /** Adds `n` rows to a count, right after they were deleted (or anonymised). */
  add(count: ProofCount, n: number): Promise<void>;
  /** Records that the erasure is done (`erased_at`). */
  close(): Promise<void>;
}

/**
 * Opens the proof of an erasure (or finds the one its earlier attempts opened): undefined
 * when it is closed, the erasure done already.
 */
export async function openErasureProof(
  directus: DirectusClient,
  proof: ProofIdentity,
): Promise<ErasureProof | undefined> {
  let closed: boolean | undefined;
  try {
    closed = await directus.changeErasureProof({ proof });
  } catch (e) {
    // Privacy first: a proof Directus refuses outright (a permanent error, which a retry
    // would meet again) must not hold back the erasure itself. It is written when done, as
    // on an instance without the route; what is retryable is retried with the erasure.
    if (!isPermanent(e)) throw e;
    console.error(
      JSON.stringify({
        level: 'error',
        msg: 'sync.erasure_proof_refused',
        status: e.status,
        code: e.code ?? null,
      }),
    );
    return proofWrittenWhenDone(directus, proof);
  }
  if (closed === undefined) return proofWrittenWhenDone(directus, proof);
  if (closed) return undefined;
  return {
    async add(count, n) {
      // A step that found nothing (a retry's earlier steps) costs no request.
      if (n > 0) await directus.changeErasureProof({ proof, add: { [count]: n } });
    },
    async close() {
      await directus.changeErasureProof({ proof, erasedAt: new Date().toISOString() });
    },
  };
}

/** On an instance without the extension's route: one proof, written when the erasure is done. */
function proofWrittenWhenDone(directus: DirectusClient, proof: ProofIdentity): ErasureProof {
  const counts: Record<ProofCount, number> = {
    people_deleted: 0,
    events_deleted: 0,
    consent_records_deleted: 0,
    dead_letters_deleted: 0,
    orders_anonymized: 0,
  };
  return {
    async add(count, n) {
      counts[count] += n;
    },
    async close() {
      const row: ErasureProofRow = { ...proof, erased_at: new Date().toISOString(), ...counts };
      // Keyed by the erasure id: a redelivery leaves one proof.
      await directus.createMissing('erasure_proofs', [{ ...row }]);
    },
  };
}
