// The workspace packages that define a given npm script, foundation first, so that
// ./attune test and pnpm bench run them one at a time in dependency order.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ORDER = ['@attune/shared-schema', '@attune/browser-sdk', '@attune/edge-worker', 'nextjs-shop'];

/** @param {string} script @returns {string[]} package names */
export function packagesWithScript(script) {
  const found = [];
  for (const dir of ['packages', 'examples']) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const file = join(dir, name, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.scripts?.[script]) found.push(pkg.name);
    }
  }
  const rank = (n) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}
