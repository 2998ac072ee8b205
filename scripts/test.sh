#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   installs dependencies, builds the release and the ASan+UBSan
#   configurations, runs unit + fs tests under the sanitizers, then every
#   label against the release build (real server, real FUSE mounts, peers),
#   then the rdma label inside a QEMU guest with a Soft-RoCE device.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
echo "== format gate (clang-format, .clang-format)"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror
scripts/build.sh release
scripts/build.sh asan
echo "== unit + fs tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L '^(unit|fs)$' -j2 --output-on-failure
echo "== fuzz targets (libFuzzer, bounded)"
scripts/fuzz.sh 10
echo "== all tests (release build; rdma tests skip here, saying so)"
ctest --test-dir build -j2 --output-on-failure
echo "== rdma tests inside the Soft-RoCE guest (one boot)"
tests/rdma/run-in-guest.sh build
