/**
 * What Directus holds about a person, for an access request: their `people` row, consent
 * records, events and dead letters, under every key they were known by (the person key,
 * the browsers merged into them, their user id, as the edge and Directus's people rows
 * record them), as the erasure deletes them.
 */
import type { DirectusClient } from '../directus/client.ts';
import type { ProfileExport } from '../profile/profile-do.ts';
import type { PersonKey } from '../profile/types.ts';
import { withRecordedKeys } from '../sync/consumer.ts';
import { erasedPersonKeys } from '../sync/mapping.ts';

export interface DownstreamHoldings {
  /** The keys the rows were looked up by. */
  personKeys: string[];
  people: Record<string, unknown>[];
  consentRecords: Record<string, unknown>[];
  events: Record<string, unknown>[];
  deadLetters: Record<string, unknown>[];
}

/** Every key a person's rows downstream can be stored under, from what the edge holds. */
export function downstreamKeys(personKey: PersonKey, held: ProfileExport): string[] {
  return erasedPersonKeys({
    personId: personKey,
    anonymousIds: held.profile?.anonymousIds ?? [],
    userId: held.profile?.userId,
  });
}

/** Reads every row of the person's site and keys from the four collections, page by page. */
export async function readDownstream(
  directus: DirectusClient,
  siteId: string,
  keys: string[],
): Promise<DownstreamHoldings> {
  // The keys Directus recorded for the person too, as the erasure deletes them.
  const personKeys = await withRecordedKeys(directus, siteId, keys);
  const filter = { _and: [{ site_id: { _eq: siteId } }, { person_key: { _in: personKeys } }] };
  const all = (collection: string, sort: string[]) =>
    directus.readAll<Record<string, unknown>>(collection, { filter, sort });
  const [people, consentRecords, events, deadLetters] = await Promise.all([
    all('people', ['id']),
    all('consent_records', ['recorded_at', 'id']),
    all('events', ['received_at', 'corrected_timestamp', 'id']),
    all('dead_letters', ['failed_at', 'id']),
  ]);
  return { personKeys, people, consentRecords, events, deadLetters };
}
