#!/usr/bin/env bash
# The clang-tidy gate: every source file of the two programs and their layers
# (src/, the server in src/server/) checked with the tree's .clang-tidy, where every warning is
# an error. Needs build/compile_commands.json (scripts/build.sh release).
#   scripts/tidy.sh [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/compile_commands.json ] || { echo "tidy: run scripts/build.sh release first" >&2; exit 2; }
# GCC-only warning flags in the compile commands mean nothing to clang.
args=(-p build -quiet -j "$(nproc)" -extra-arg=-Wno-unknown-warning-option)
if [ $# -gt 0 ]; then
  run-clang-tidy "${args[@]}" "$@"
else
  run-clang-tidy "${args[@]}" "$PWD/src/.*\\.cc$"
fi > build/tidy.log 2>&1 || {
  grep -E "(warning|error):" build/tidy.log | sed 's/\x1b\[[0-9;]*m//g' | sort -u
  echo "tidy: the findings above (full output in build/tidy.log)" >&2
  exit 1
}
echo "tidy: clean ($(grep -c '"file"' build/compile_commands.json) files in the build, src/ checked)"
