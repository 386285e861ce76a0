#!/bin/sh
# tu-agent launcher: runs the agent bundled in this release folder on the Node.js runtime
# shipped beside it. Nothing outside the folder is needed (no npm, no system Node).
set -eu
self=$(readlink -f "$0")
app=$(cd "$(dirname "$self")/.." && pwd)
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
# Fixed thresholds stop glibc raising its mmap threshold after libvips frees large pixel
# buffers, so they go back to the kernel instead of staying resident (docs/release.md).
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}"
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-131072}"
# Each V8 isolate (the main thread and every worker thread) otherwise grows its young
# generation to 16 MB semi-spaces; 1 MB takes ~50 MB off the idle RSS. --optimize-for-size
# makes V8 grow its heaps conservatively and collect sooner: without it the main isolate
# kept the garbage of every photo, ~1 MB each, and RSS passed the budget after ~100 photos
# (docs/release.md "Where the memory goes").
# --interrupt-budget (~15x the default) and --no-sparkplug: V8 compiles fewer functions during
# start-up, about 8 MB less at idle; photo throughput unchanged, since the hot paths still
# reach the optimising compiler. No --enable-source-maps: it keeps every map in memory and
# parses main.js's into ~40 MB of heap at the first stack trace read; frames are mapped
# offline instead (tu-agent stack, agent/src/cli/stack.ts).
exec "$app/runtime/bin/node" --max-semi-space-size=1 --optimize-for-size --interrupt-budget=1048576 --no-sparkplug "$app/lib/main.js" "$@"
