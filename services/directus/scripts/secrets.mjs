/**
 * Which secret each side of the Directus ↔ Worker link gets: the server key Directus's order
 * Flow sends, the secret its Flows sign hooks with, the attune-sync token. Pure (bootstrap.mjs
 * reads the files and the environment and passes the values in), so the choice is tested
 * without a Directus.
 *
 * A value taken from a file must be one the Worker would take: 16 characters or more. Every
 * placeholder of .dev.vars.example (`change-me`, `sk_change_me`) is shorter, and so is what an
 * older bootstrap could persist from it; taking one would leave Directus sending a key the
 * Worker refuses, and a guessable one at that.
 */
import { randomSecret } from './lib.mjs';

/** The Worker's minimum for a server key, hook secret and identity secret (sites/index.ts, hooks). */
export const MIN_SECRET_CHARS = 16;

/** Whether the Worker would take `value` as a secret: a string of MIN_SECRET_CHARS or more. */
export function usableSecret(value) {
  return typeof value === 'string' && value.length >= MIN_SECRET_CHARS;
}

/** A new random server key, in the form `./attune up` writes (scripts/up.mjs). */
export function newServerKey() {
  return `sk_${randomSecret(24)}`;
}

/**
 * `explicit` (an ATTUNE_* variable the operator set) as it is, even when short: it was asked
 * for, and the Worker says in its log why it refuses it. Else the first of `candidates` (values
 * read from files, best first) the Worker would take, else a new one from `generate`.
 */
export function chooseSecret({ explicit, candidates = [], generate }) {
  if (typeof explicit === 'string' && explicit !== '') return explicit;
  return candidates.find(usableSecret) ?? generate();
}

function isRecord(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The entry of `siteId` in parsed ATTUNE_SITE_SECRETS, when it is an object. */
function siteEntry(siteSecrets, siteId) {
  if (!isRecord(siteSecrets) || !Object.hasOwn(siteSecrets, siteId)) return undefined;
  const entry = siteSecrets[siteId];
  return isRecord(entry) ? entry : undefined;
}

/**
 * The server key the order Flow sends for `siteId`: `explicit` (ATTUNE_SERVER_KEY), else the
 * site's serverKey in the Worker's .dev.vars (parsed ATTUNE_SITE_SECRETS), else the key an
 * earlier bootstrap chose (`previous`), else a new random one. The site's own entry, not
 * another site's: the Worker knows a server key as one site's.
 */
export function chooseServerKey({ explicit, siteSecrets, siteId, previous, generate = newServerKey }) {
  return chooseSecret({
    explicit,
    candidates: [siteEntry(siteSecrets, siteId)?.serverKey, previous],
    generate,
  });
}

/**
 * ATTUNE_SITE_SECRETS as the Worker needs it to take `serverKey` from `siteId`: the sites'
 * secrets it already has (parsed, from .dev.vars), with that site's serverKey set. A site with
 * no identity secret gets an empty one, which the Worker takes as "no signed user ids" (and
 * logs); without the field it would skip the site, server key and all.
 */
export function workerSiteSecrets({ siteSecrets, siteId, serverKey }) {
  const sites = isRecord(siteSecrets) ? { ...siteSecrets } : {};
  const own = siteEntry(siteSecrets, siteId) ?? {};
  sites[siteId] = {
    ...own,
    identitySecret: typeof own.identitySecret === 'string' ? own.identitySecret : '',
    serverKey,
  };
  return sites;
}
