#!/bin/sh
# tu-agent launcher: runs the agent bundled in this release folder on the Node.js runtime
# shipped beside it. Nothing outside the folder is needed (no npm, no system Node).
set -eu
self=$(readlink -f "$0")
app=$(cd "$(dirname "$self")/.." && pwd)
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec "$app/runtime/bin/node" --enable-source-maps "$app/lib/main.js" "$@"
