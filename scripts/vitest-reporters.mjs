// Vitest reporters for every package: the default console reporter, plus a JSON report
// in $ATTUNE_REPORT_DIR when ./attune test runs, so one summary line can close CI.
/** @param {string} name */
export function reporters(name) {
  const dir = process.env.ATTUNE_REPORT_DIR;
  return dir ? ['default', ['json', { outputFile: `${dir}/${name}.json` }]] : ['default'];
}
