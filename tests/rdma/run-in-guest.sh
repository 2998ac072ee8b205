#!/usr/bin/env bash
# Runs the `rdma` test label inside one Soft-RoCE guest boot (real verbs on
# rdma_rxe; the host kernel here has no RDMA). Every rdma test must pass there;
# none may skip (S3RDMAFS_REQUIRE_RDMA=1 turns a missing device into a failure).
#   tests/rdma/run-in-guest.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$(realpath "${1:-build}")
log=$(mktemp)
set +e
# Temporary trees live on the shared build directory: the guest's own /tmp is
# tmpfs under overlayfs (kernel 6.1), which has no user xattrs, and the
# reference server keeps object metadata in them. 3 GiB: rdma.gateway runs a
# Ceph cluster (monitor, memstore OSD, radosgw) in the guest.
mkdir -p "$BUILD/guest-tmp"
tests/rdma/rxe-vm.sh --timeout 1200 --mem 3072 --rw "$BUILD" --env S3RDMAFS_REQUIRE_RDMA=1 --env S3RDMAFS_BUILD="$BUILD" \
  --env TMPDIR="$BUILD/guest-tmp" -- \
  ctest --test-dir "$BUILD" -L '^rdma$' --output-on-failure 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -q "Skipped" "$log"; then echo "run-in-guest: an rdma test skipped inside the guest" >&2; rc=1; fi
if ! grep -q "tests passed" "$log"; then echo "run-in-guest: no ctest summary from the guest" >&2; rc=1; fi
rm -f "$log"
exit $rc
