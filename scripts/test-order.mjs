// Lists the workspace packages that have a `test` script, foundation first, so that
// ./attune test runs them one at a time in dependency order.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const order = ['@attune/shared-schema', '@attune/browser-sdk', '@attune/edge-worker', 'nextjs-shop'];
const found = [];
for (const dir of ['packages', 'examples']) {
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    if (pkg.scripts?.test) found.push(pkg.name);
  }
}
const rank = (n) => (order.includes(n) ? order.indexOf(n) : order.length);
found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
console.log(found.join('\n'));
