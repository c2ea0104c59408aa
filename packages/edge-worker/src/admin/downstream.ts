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

const PAGE = 500;

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
  const keys = new Set<string>([personKey]);
  for (const id of held.profile?.anonymousIds ?? []) keys.add(`anon:${id}`);
  if (held.profile?.userId !== undefined) keys.add(`user:${held.profile.userId}`);
  return [...keys];
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
  const all = async (collection: string, sort: string[]) => {
    const rows: Record<string, unknown>[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await directus.readItems<Record<string, unknown>>(collection, {
        filter,
        sort,
        limit: PAGE,
        offset,
      });
      rows.push(...page);
      if (page.length < PAGE) return rows;
    }
  };
  const [people, consentRecords, events, deadLetters] = await Promise.all([
    all('people', ['id']),
    all('consent_records', ['recorded_at', 'id']),
    all('events', ['received_at', 'corrected_timestamp', 'id']),
    all('dead_letters', ['failed_at', 'id']),
  ]);
  return { personKeys, people, consentRecords, events, deadLetters };
}
