// Shared by the benches that run Workers under `wrangler dev`: starting and stopping the
// servers (each in its own process group, state under /dev/shm), waiting until they
// answer, and reading the CPU time of their processes from /proc.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * wrangler dev's local trace collector and data explorer, off unless `devTools` is 'on':
 * the collector streams every span of a Worker (each request, Durable Object call, SQL
 * statement, queue send) to a collector inside the same single-threaded workerd, and the
 * explorer wraps every SQLite Durable Object class. Developer tools a deployed Worker
 * does not run, whose cost grows with the work a Worker does.
 */
export function devToolsEnv(devTools) {
  return devTools === 'on' ? {} : { X_LOCAL_OBSERVABILITY: 'false', X_LOCAL_EXPLORER: 'false' };
}

/**
 * A set of `wrangler dev` servers sharing one temp dir (in memory where there is one,
 * /dev/shm: the benches measure Workers, not this machine's disk); `stop()` ends them all
 * and removes the dir, and runs on exit too.
 */
export function wranglerServers(prefix, devTools) {
  const work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), prefix));
  const children = [];
  const stop = () => {
    for (const child of children) {
      try {
        // Each server runs in its own process group (detached); end exactly that group.
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
    }
    children.length = 0;
    rmSync(work, { recursive: true, force: true });
  };
  process.on('exit', stop);
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));

  /** Starts `wrangler dev --config <config>` on 127.0.0.1:`port`; `output()` is its last 4 KB of output. */
  const start = (config, port, inspectorPort, label) => {
    const bin = join(here, '..', 'node_modules', '.bin', 'wrangler');
    const child = spawn(
      bin,
      [
        'dev',
        '--config',
        config,
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--inspector-port',
        String(inspectorPort),
        '--persist-to',
        join(work, `state-${label}`),
        '--log-level',
        process.env.BENCH_LOG_LEVEL ?? 'warn',
        '--show-interactive-dev-session=false',
      ],
      {
        cwd: dirname(config),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', ...devToolsEnv(devTools) },
      },
    );
    let output = '';
    child.stdout.on('data', (d) => {
      output = (output + d).slice(-4000);
      if (process.env.BENCH_LOG_LEVEL) process.stderr.write(d);
    });
    child.stderr.on('data', (d) => {
      output = (output + d).slice(-4000);
    });
    children.push(child);
    return { child, output: () => output };
  };
  return { work, start, stop };
}

/** Resolves once `url` answers below 500; throws when the server exits or after 2 minutes. */
export async function waitReady(url, server) {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {}
    if (server.child.exitCode !== null) throw new Error(`wrangler exited:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`not ready: ${url}\n${server.output()}`);
}

/** The wrangler process and all its descendants (node proxy, esbuild, workerd). */
export function processTree(pid) {
  const parentOf = new Map();
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      parentOf.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {}
  }
  const tree = [pid];
  for (const [child] of parentOf) {
    let cur = child;
    for (let hops = 0; hops < 10 && cur > 1; hops++) {
      cur = parentOf.get(cur) ?? 0;
      if (cur === pid) {
        tree.push(child);
        break;
      }
    }
  }
  return tree;
}

/** The workerd processes under a wrangler process (wrangler dev runs two: the Worker's and its dev proxy). */
export function findWorkerd(pid) {
  return processTree(pid).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'workerd';
    } catch {
      return false;
    }
  });
}

/** CPU time (ms) a process has used so far: utime + stime from /proc. */
export function cpuMs(pid) {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return Number.NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/**
 * The Worker's own address under `wrangler dev`, behind wrangler's dev proxy. wrangler
 * listens on --port with a proxy (a Durable Object in a second workerd) that forwards each
 * request to the workerd running the Worker, on a port it picks at random and does not
 * print. A deployed Worker has no such proxy, so the benches also measure without it.
 * Found from /proc: the listening loopback sockets of the Worker's workerd (the one
 * started with an inspector), minus its inspector, which answers /json/version.
 */
export async function userWorkerOrigin(pid) {
  const listening = new Map();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    // local address is hex ip:port; state 0A is LISTEN; column 9 is the socket's inode.
    if (cols[3] === '0A' && cols[1]?.startsWith('0100007F:'))
      listening.set(cols[9], Number.parseInt(cols[1].slice(9), 16));
  }
  for (const p of findWorkerd(pid)) {
    if (!readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--inspector-addr')) continue;
    for (const fd of readdirSync(`/proc/${p}/fd`)) {
      let link = '';
      try {
        link = readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {}
      const port = listening.get(/^socket:\[(\d+)\]$/.exec(link)?.[1] ?? '');
      if (port === undefined) continue;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/json/version`, {
          signal: AbortSignal.timeout(2000),
        });
        const text = await res.text();
        if (!text.includes('"Browser"')) return `http://127.0.0.1:${port}`;
      } catch {}
    }
  }
  throw new Error(`no Worker socket found under wrangler (pid ${pid})`);
}
