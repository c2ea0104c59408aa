// Runs every workspace package's `bench` script in turn (foundation first) and keeps
// going past a failing one, so one broken benchmark does not hide the others' figures.
// Figures print as markdown tables; the README quotes them.
import { spawnSync } from 'node:child_process';
import { packagesWithScript } from './workspace-packages.mjs';

const only = process.argv.slice(2);
const found = packagesWithScript('bench').filter((name) => only.length === 0 || only.includes(name));

const failed = [];
for (const name of found) {
  console.log(`\n## ${name}\n`);
  const run = spawnSync('pnpm', ['--filter', name, 'run', 'bench'], { stdio: 'inherit' });
  if (run.status !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`\nbenchmarks failed: ${failed.join(', ')}`);
  process.exit(1);
}
