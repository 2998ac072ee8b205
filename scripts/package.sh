#!/usr/bin/env bash
# Builds the deb and rpm packages from the release build (/usr prefix):
#   scripts/package.sh        -> build/s3rdmafs_*.deb, build/s3rdmafs-*.rpm
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh release
(cd build && cpack -G "DEB;RPM")
ls -1 build/s3rdmafs*.deb build/s3rdmafs*.rpm
