/**
 * Starting and stopping a Directus instance as a background process: the pid is
 * recorded in data/directus.pid, output goes to data/directus.log, and start returns
 * once GET /server/health answers. Starting an instance that already runs is a no-op.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DIRECTUS_BIN, directusProcessEnv, ensureDir, log, pidAlive, waitForHealth } from './lib.mjs';

function recordedPid(inst) {
  if (!existsSync(inst.pidFile)) return undefined;
  const pid = Number(readFileSync(inst.pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether the instance's recorded process is alive and healthy. */
export async function isRunning(inst) {
  const pid = recordedPid(inst);
  if (pid === undefined || !pidAlive(pid)) return false;
  return waitForHealth(inst.url, { timeoutMs: 1500 });
}

/** Starts Directus in the background (if not running) and waits until it is healthy. */
export async function startServer(inst, { timeoutMs = 120_000 } = {}) {
  const pid = recordedPid(inst);
  if (pid !== undefined && pidAlive(pid)) {
    if (await waitForHealth(inst.url, { timeoutMs, isAlive: () => pidAlive(pid) })) {
      log(`already running at ${inst.url} (pid ${pid})`);
      return pid;
    }
    log(`recorded pid ${pid} is alive but not healthy; restarting it`);
    await stopServer(inst);
  }
  ensureDir(inst.dataDir);
  const out = openSync(inst.logFile, 'a');
  const child = spawn(process.execPath, [DIRECTUS_BIN, 'start'], {
    cwd: inst.home,
    env: directusProcessEnv(inst),
    detached: true,
    stdio: ['ignore', out, out],
  });
  child.unref();
  if (child.pid === undefined) throw new Error('could not spawn directus');
  writeFileSync(inst.pidFile, String(child.pid));
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const ok = await waitForHealth(inst.url, { timeoutMs, isAlive: () => !exited && pidAlive(child.pid) });
  if (!ok) {
    await stopServer(inst);
    throw new Error(`directus did not become healthy at ${inst.url}; see ${inst.logFile}`);
  }
  log(`running at ${inst.url} (pid ${child.pid})`);
  return child.pid;
}

/** Stops the instance's recorded process (SIGTERM, then SIGKILL after 10 s). */
export async function stopServer(inst) {
  const pid = recordedPid(inst);
  if (pid === undefined || !pidAlive(pid)) {
    rmSync(inst.pidFile, { force: true });
    return false;
  }
  try {
    // The process group: directus was started detached, as its own group leader.
    process.kill(-pid, 'SIGTERM');
  } catch {
    process.kill(pid, 'SIGTERM');
  }
  const deadline = Date.now() + 10_000;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (pidAlive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
  }
  rmSync(inst.pidFile, { force: true });
  log(`stopped (pid ${pid})`);
  return true;
}
