#!/usr/bin/env node
/**
 * `pnpm attune <command>`: operator commands for a running Attune.
 *
 *   pnpm attune replay --person <anon:…|user:…> [--site demo] [--url http://127.0.0.1:8787]
 *       Rebuilds the person's ProfileDO from the event log in Directus (POST
 *       /v1/admin/replay/:personKey). The admin token comes from --token, ADMIN_TOKEN,
 *       or the repository's .dev.vars.
 *   pnpm attune directus <install|bootstrap|seed|start|stop|up>
 *       Runs services/directus/scripts/<command>.mjs (the local Directus).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function usage(code = 1) {
  console.error(`usage:
  pnpm attune replay --person <anon:ID|user:ID> [--site demo] [--url http://127.0.0.1:8787] [--token ADMIN_TOKEN]
  pnpm attune directus <install|bootstrap|seed|start|stop|up>`);
  process.exit(code);
}

function devVar(name) {
  const file = join(root, '.dev.vars');
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (m && m[1] === name) return m[2].replace(/^["']|["']$/g, '');
  }
  return undefined;
}

async function replay(args) {
  const { values } = parseArgs({
    args,
    options: {
      person: { type: 'string' },
      site: { type: 'string', default: 'demo' },
      url: { type: 'string', default: process.env.ATTUNE_WORKER_URL ?? 'http://127.0.0.1:8787' },
      token: { type: 'string' },
    },
  });
  if (!values.person) usage();
  const person = values.person.includes(':') ? values.person : `anon:${values.person}`;
  const token = values.token ?? process.env.ADMIN_TOKEN ?? devVar('ADMIN_TOKEN');
  if (!token) {
    console.error(
      'attune: no admin token (pass --token, set ADMIN_TOKEN, or write ADMIN_TOKEN in .dev.vars)',
    );
    process.exit(1);
  }
  const url = `${values.url.replace(/\/+$/, '')}/v1/admin/replay/${encodeURIComponent(person)}?siteId=${encodeURIComponent(values.site)}`;
  let res;
  try {
    res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  } catch (e) {
    console.error(
      `attune: the Worker at ${values.url} is not reachable (${e.message}); is \`./attune up\` running?`,
    );
    process.exit(1);
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    console.error(`attune: replay failed (${res.status}): ${body.error?.message ?? 'unknown error'}`);
    process.exit(1);
  }
  const p = body.profile;
  console.log(
    `replayed ${body.events} stored events (${body.accepted} accepted${body.unreadable ? `, ${body.unreadable} unreadable, left out` : ''}) into ${body.siteId}/${body.personKey}`,
  );
  if (p) {
    const top = Object.entries(p.interests ?? {})
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([k, v]) => `${k}=${Number(v).toFixed(2)}`);
    console.log(`segments: ${(p.segments ?? []).join(', ') || '(none)'}`);
    console.log(`top interests: ${top.join(', ') || '(none)'}`);
  }
}

function directus(args) {
  const command = args[0];
  const scripts = {
    install: 'install',
    bootstrap: 'bootstrap',
    seed: 'seed',
    start: 'start',
    stop: 'stop',
    up: 'up',
  };
  if (!command || !(command in scripts)) usage();
  const r = spawnSync(
    process.execPath,
    [join(root, 'services/directus/scripts', `${scripts[command]}.mjs`), ...args.slice(1)],
    {
      stdio: 'inherit',
    },
  );
  process.exit(r.status ?? 1);
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'replay') await replay(rest);
else if (command === 'directus') directus(rest);
else usage(command === undefined || command === 'help' || command === '--help' ? 0 : 1);
