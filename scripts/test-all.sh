#!/usr/bin/env bash
# Runs every check CI runs: lint, typecheck, then each package's tests in turn, and
# closes with one summary line over all test runners ("N passed, N failed, N skipped").
set -uo pipefail
ATTUNE_ROOT="${ATTUNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$ATTUNE_ROOT"

# Browser tests drive Debian's Chromium (Playwright's own browser download cannot work offline).
if ! command -v chromium >/dev/null 2>&1; then
  echo "attune: installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = "0" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null || echo "attune: chromium install failed" >&2
  else
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null || echo "attune: chromium install failed" >&2
  fi
fi

REPORTS="$ATTUNE_ROOT/.attune/reports"
rm -rf "$REPORTS" && mkdir -p "$REPORTS"
export ATTUNE_REPORT_DIR="$REPORTS"
status=0

step() {
  local name="$1"; shift
  echo
  echo "━━ $name"
  if ! "$@"; then
    echo "✗ $name failed"
    status=1
  fi
}

step "lint" pnpm lint
step "typecheck" pnpm typecheck
step "build" pnpm build
step "directus install (once; ~5 min from a clean clone)" node services/directus/scripts/install.mjs
# The Directus scripts' own unit tests (node:test; services/directus is outside the workspace).
step "test services/directus scripts" npm --prefix services/directus test
# The repository scripts' own unit tests (node:test), such as when `./attune up` fires the crons.
step "test scripts" node --test scripts/*.test.mjs
for pkg in $(node scripts/test-order.mjs); do
  step "test $pkg" pnpm --filter "$pkg" test
done

node scripts/test-summary.mjs "$REPORTS" || status=1
exit $status
