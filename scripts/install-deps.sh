#!/usr/bin/env bash
# Installs what s3rdmafs needs on Debian 12, as root.
#   scripts/install-deps.sh          build + run (compiler, libraries, fuse3)
#   scripts/install-deps.sh --test   also the test peers: awscli, s3cmd, boto3, s3fs, rclone, fio, s3rver,
#                                    and Ceph (radosgw, one mon and one OSD: tests/lib/radosgw.py)
set -euo pipefail
want_test=0
[ "${1:-}" = "--test" ] && want_test=1
[ "$(id -u)" = 0 ] || { echo "install-deps: run as root (apt-get, /dev/fuse)" >&2; exit 1; }

BUILD_PKGS="build-essential cmake ninja-build pkg-config fuse3 libfuse3-dev libcurl4-openssl-dev libssl-dev
  libboost-dev libtomlplusplus-dev libexpected-dev libpugixml-dev libisal-dev libcli11-dev libgtest-dev libgmock-dev
  libibverbs-dev librdmacm-dev libsystemd-dev ca-certificates curl python3 clang-format git"
TEST_PKGS="qemu-system-x86 busybox-static cpio ibverbs-providers ibverbs-utils rdmacm-utils perftest iproute2
  awscli s3cmd python3-boto3 s3fs rclone fio attr procps bc socat openssl clang clang-tidy libclang-rt-14-dev
  dpkg-dev file lintian rpm systemd man-db python3-h5py python3-netcdf4 rsync
  ceph-mon ceph-osd ceph-base ceph-common radosgw"

missing=""
for p in $BUILD_PKGS $( [ $want_test = 1 ] && echo $TEST_PKGS ); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ $want_test = 1 ] && ! command -v npm >/dev/null; then missing="$missing nodejs npm"; fi
if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi

if [ $want_test = 1 ] && [ ! -x /opt/s3rdmafs-test/node_modules/.bin/s3rver ]; then
  echo "install-deps: installing s3rver (npm) into /opt/s3rdmafs-test"
  mkdir -p /opt/s3rdmafs-test
  npm install --prefix /opt/s3rdmafs-test --no-audit --no-fund --loglevel=error s3rver@3 >/dev/null
fi
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing (modprobe fuse?)" >&2; exit 1; }
echo "install-deps: ok"
