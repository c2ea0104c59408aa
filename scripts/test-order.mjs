// Lists the workspace packages that have a `test` script, foundation first, so that
// ./attune test runs them one at a time in dependency order.
import { packagesWithScript } from './workspace-packages.mjs';

console.log(packagesWithScript('test').join('\n'));
