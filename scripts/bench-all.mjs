// Runs every workspace package's `bench` script in turn (foundation first) and keeps
// going past a failing one, so one broken benchmark does not hide the others' figures.
// Figures print as markdown tables; the README quotes them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const order = ['@attune/shared-schema', '@attune/browser-sdk', '@attune/edge-worker', 'nextjs-shop'];
const only = process.argv.slice(2);
const found = [];
for (const dir of ['packages', 'examples']) {
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    if (pkg.scripts?.bench && (only.length === 0 || only.includes(pkg.name))) found.push(pkg.name);
  }
}
const rank = (n) => (order.includes(n) ? order.indexOf(n) : order.length);
found.sort((a, b) => rank(a) - rank(b));

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
