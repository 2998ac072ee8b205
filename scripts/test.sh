#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   installs dependencies, builds the release, ASan+UBSan and TSan
#   configurations, runs clang-tidy, unit + fs tests under the sanitizers
#   (and mount smoke tests with the daemon under TSan), then every
#   label against the release build (real server, real FUSE mounts, peers),
#   then the rdma label inside a QEMU guest with a Soft-RoCE device.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
echo "== format gate (clang-format, .clang-format)"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror
scripts/build.sh release
scripts/build.sh asan
scripts/build.sh tsan
echo "== clang-tidy gate (.clang-tidy, every warning an error)"
scripts/tidy.sh
echo "== unit + fs tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L '^(unit|fs)$' -j2 --output-on-failure
echo "== fs tests, then mounts (read, cache pressure, write, liveness) with the daemon under TSan"
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/fs_tests --gtest_brief=1
tsan_logs=$(mktemp -d /tmp/s3rdmafs-tsan-XXXXXX)
for t in test_read test_cache_pressure test_write test_liveness; do
  TSAN_OPTIONS="halt_on_error=1:log_path=$tsan_logs/daemon" S3RDMAFS_FS_BIN="$PWD/build-tsan/src/s3rdmafs" \
    S3RDMAFS_BUILD="$PWD/build" /usr/bin/python3 tests/mount/$t.py
done
if ls "$tsan_logs"/daemon* >/dev/null 2>&1; then
  cat "$tsan_logs"/daemon*; echo "ThreadSanitizer found the races above in the daemon" >&2; exit 1
fi
rm -rf "$tsan_logs"
echo "== fuzz targets (libFuzzer, bounded)"
scripts/fuzz.sh 10
echo "== all tests (release build; rdma tests skip here, saying so)"
ctest --test-dir build -j2 --output-on-failure
echo "== rdma tests inside the Soft-RoCE guest (one boot)"
tests/rdma/run-in-guest.sh build
