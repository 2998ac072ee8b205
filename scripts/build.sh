#!/usr/bin/env bash
# Configures and builds one configuration: scripts/build.sh [release|asan|tsan]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  # The release build is also what the packages are made from (/usr prefix).
  release) cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
           ninja -C build ;;
  # The sanitizer build runs the unit and fs tests only: the server and the
  # mount tests exercise the release binaries.
  asan)    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DS3RDMAFS_SANITIZE=ON \
             -DS3RDMAFS_BUILD_SERVER=OFF >/dev/null
           ninja -C build-asan unit_tests fs_tests ;;
  # ThreadSanitizer: the fs tests and the daemon for a mount smoke test
  # (the server under it is the release build's).
  tsan)    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DS3RDMAFS_TSAN=ON \
             -DS3RDMAFS_BUILD_SERVER=OFF >/dev/null
           ninja -C build-tsan fs_tests s3rdmafs ;;
  *) echo "usage: scripts/build.sh [release|asan|tsan]" >&2; exit 2 ;;
esac
