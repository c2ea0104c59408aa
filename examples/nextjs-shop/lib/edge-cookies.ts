/**
 * The two first-party cookies the Worker reads in edge-proxy mode (see
 * packages/edge-worker/src/proxy/cookies.ts): `attune_aid`, the browser's anonymous id,
 * and `attune_consent`, the visitor's choice. The Worker personalizes the HTML of the
 * next page load by `attune_aid`, so it must be the same id the SDK puts on events.
 *
 * The SDK keeps its visitor record in localStorage (`attune`) and does not write these
 * cookies itself yet, so the shop bridges them: the edge's id wins when one exists, and
 * the SDK's id is shared with the edge once consent allows storing an id. Both are
 * written only when analytics or personalization is granted; a refusal deletes the id.
 */
import type { ConsentState } from '@attune/shared-schema/constants';

export const ANONYMOUS_ID_COOKIE = 'attune_aid';
export const CONSENT_COOKIE = 'attune_consent';
const SDK_RECORD_KEY = 'attune';
const MAX_AGE_S = 400 * 24 * 60 * 60;
const ID = /^[A-Za-z0-9_-]{8,128}$/;

function readCookie(name: string): string | undefined {
  const match = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  if (!match?.[1]) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
}

function writeCookie(name: string, value: string, maxAge: number): void {
  const secure = window.location.protocol === 'https:' ? '; Secure' : '';
  // biome-ignore lint/suspicious/noDocumentCookie: first-party cookies the edge reads; the Cookie Store API is not everywhere yet
  document.cookie = `${name}=${encodeURIComponent(value)}; Path=/; Max-Age=${maxAge}; SameSite=Lax${secure}`;
}

function readSdkRecord(): Record<string, unknown> | undefined {
  try {
    const raw = localStorage.getItem(SDK_RECORD_KEY);
    const parsed: unknown = raw === null ? undefined : JSON.parse(raw);
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Before the SDK starts: adopt the edge's anonymous id, so events and edge decisions name one person. */
export function adoptEdgeAnonymousId(): void {
  const aid = readCookie(ANONYMOUS_ID_COOKIE);
  if (aid === undefined || !ID.test(aid)) return;
  const record = readSdkRecord() ?? {};
  if (record.anonymousId === aid) return;
  try {
    localStorage.setItem(SDK_RECORD_KEY, JSON.stringify({ ...record, anonymousId: aid }));
  } catch {
    // Storage unavailable (private mode): the SDK keeps its own id for this page.
  }
}

function allowsStoredId(state: ConsentState): boolean {
  return state.categories.analytics === true || state.categories.personalization === true;
}

/** After a consent change (or a reset): tell the edge the choice and, when allowed, the SDK's id. */
export function shareWithEdge(state: ConsentState & { decided: boolean }): void {
  if (!state.decided) return;
  writeCookie(
    CONSENT_COOKIE,
    JSON.stringify({ categories: state.categories, policyVersion: state.policyVersion }),
    MAX_AGE_S,
  );
  const id = readSdkRecord()?.anonymousId;
  if (allowsStoredId(state) && typeof id === 'string' && ID.test(id))
    writeCookie(ANONYMOUS_ID_COOKIE, id, MAX_AGE_S);
  else writeCookie(ANONYMOUS_ID_COOKIE, '', 0);
}
