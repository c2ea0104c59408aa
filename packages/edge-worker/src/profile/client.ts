/**
 * Typed calls into a person's ProfileDO. Workers RPC typings cannot express recursive
 * JSON (event properties, traits), so results come back as `never`; these wrappers name
 * the real (structured-clone) types once, here, instead of at every call site.
 */
import type { ErasureResult, IngestResult, ProfileExport } from './profile-do.ts';
import type { PersonKey, ProfileEventInput, ProfileView } from './types.ts';

/** The Durable Object name of a person within a site. */
export function profileObjectName(siteId: string, personKey: PersonKey): string {
  return `${siteId}/${personKey}`;
}

/** The ProfileDO stub of a person within a site. */
export function profileStub(env: Env, siteId: string, personKey: PersonKey) {
  return env.PROFILE.get(env.PROFILE.idFromName(profileObjectName(siteId, personKey)));
}

/** Applies a person's events in order (see ProfileDO.ingest). */
export async function ingestProfile(
  env: Env,
  siteId: string,
  personKey: PersonKey,
  inputs: ProfileEventInput[],
  limit?: { perSecond: number; burst: number },
): Promise<IngestResult> {
  const result: unknown = await profileStub(env, siteId, personKey).ingest(siteId, personKey, inputs, limit);
  return result as IngestResult;
}

/** A person's profile view, or null when nothing is held. */
export async function viewProfile(
  env: Env,
  siteId: string,
  personKey: PersonKey,
): Promise<ProfileView | null> {
  const view: unknown = await profileStub(env, siteId, personKey).view();
  return view as ProfileView | null;
}

/** Everything held about a person (access request). */
export async function exportProfile(env: Env, siteId: string, personKey: PersonKey): Promise<ProfileExport> {
  const text = await profileStub(env, siteId, personKey).export();
  return JSON.parse(text) as ProfileExport;
}

/** Erases a person (and the anonymous profiles merged into them), leaving tombstones. */
export async function eraseProfile(env: Env, siteId: string, personKey: PersonKey): Promise<ErasureResult> {
  return profileStub(env, siteId, personKey).erase(siteId, personKey);
}

/** Whether a person was erased (their tombstone still stands): what was queued for them must not land downstream. */
export async function isErased(env: Env, siteId: string, personKey: PersonKey): Promise<boolean> {
  return (await profileStub(env, siteId, personKey).erasedAt()) !== null;
}

/** Counts an offer by a trigger rule unless `cap` is reached; false when capped. */
export function recordOffer(
  env: Env,
  siteId: string,
  personKey: PersonKey,
  ruleId: string,
  cap: number,
): Promise<boolean> {
  return profileStub(env, siteId, personKey).recordOffer(ruleId, cap);
}
