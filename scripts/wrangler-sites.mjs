/**
 * The sites a wrangler.toml gives the Worker (its `ATTUNE_SITES` var, a JSON array on one
 * line), for the scripts, tests and benches that start or check the Worker with them.
 */

/** The parsed `ATTUNE_SITES` of `toml`; throws, saying so, when it has no such line. */
export function configuredSites(toml) {
  const line = /^ATTUNE_SITES = '(.*)'$/m.exec(toml);
  if (!line) throw new Error('wrangler.toml has no ATTUNE_SITES line');
  return JSON.parse(line[1]);
}
