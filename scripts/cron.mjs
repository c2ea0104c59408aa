/**
 * Runs the Worker's Cron Triggers for `./attune up`. `wrangler dev` never fires them on its
 * own, so locally the five-minute cache check (a marketer's change whose Directus notice was
 * lost applies within minutes) and the daily retention would never run. This fires each
 * cron of wrangler.toml when it is due, in UTC as Cloudflare does, through wrangler dev's
 * `/cdn-cgi/local/scheduled` route.
 */

/** The `crons = [...]` of a wrangler.toml's `[triggers]`. */
export function cronsOf(toml) {
  const line = /^crons\s*=\s*\[(.*)\]\s*$/m.exec(toml);
  return line ? [...line[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]) : [];
}

/**
 * Whether a five-field cron (minute hour day-of-month month day-of-week) is due in the UTC
 * minute of `date`. Fields take `*`, `*\/n`, numbers, ranges `a-b` and lists of them; an
 * expression it cannot read throws, naming it, rather than never firing unnoticed.
 */
export function isDue(cron, date) {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5)
    throw new Error(`cron "${cron}": expected 5 fields (minute hour day month weekday)`);
  const now = [
    date.getUTCMinutes(),
    date.getUTCHours(),
    date.getUTCDate(),
    date.getUTCMonth() + 1,
    date.getUTCDay(),
  ];
  // Every field is read, even after one fails to match: an unreadable one must throw now.
  const each = fields.map((field, i) =>
    field
      .split(',')
      .map((part) => matches(part, now[i], cron))
      .includes(true),
  );
  return each.every(Boolean);
}

function matches(part, value, cron) {
  const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
  if (!m) throw new Error(`cron "${cron}": cannot read "${part}"`);
  const [, , from, to, step] = m;
  const low = from === undefined ? 0 : Number(from);
  const high =
    from === undefined
      ? Number.POSITIVE_INFINITY
      : to === undefined
        ? step
          ? Number.POSITIVE_INFINITY
          : low
        : Number(to);
  return value >= low && value <= high && (value - low) % Number(step ?? 1) === 0;
}

/**
 * Fires every due cron of `crons` against the Worker at `workerUrl` at the start of each
 * UTC minute until the returned function is called. A failed run is reported through `log`
 * and tried at its next due time, as Cloudflare would.
 */
export function runCrons(workerUrl, crons, log) {
  for (const cron of crons) isDue(cron, new Date()); // an unreadable cron fails at start
  let timer;
  const tick = async () => {
    const now = new Date();
    for (const cron of crons.filter((c) => isDue(c, now))) {
      const url = `${workerUrl}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(cron)}`;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
        if (!res.ok) log(`cron "${cron}": the Worker answered ${res.status}`);
      } catch (e) {
        log(`cron "${cron}": ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    schedule();
  };
  const schedule = () => {
    timer = setTimeout(tick, 60_000 - (Date.now() % 60_000) + 50);
  };
  schedule();
  return () => clearTimeout(timer);
}
