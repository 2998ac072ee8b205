#!/usr/bin/env bash
# Read-ahead under cache pressure: N sequential readers (one file each) over
# caches of several sizes, against s3rdma-server on loopback. For each cache
# size it prints bytes fetched over HTTP per byte read (the amplification),
# wall time and read-ahead's outcome, for this build and, with --baseline REV,
# for s3rdmafs built from REV (a git worktree, built once), side by side.
# Run as root after scripts/build.sh release.
#   bench/readahead_bench.sh [--readers N] [--file-mib N] [--caches "16M 64M 256M"] [--baseline REV]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. bench/lib.sh
READERS=30 FILE_MIB=16 CACHES="16M 32M 64M 256M" BASELINE=
while [ $# -gt 0 ]; do
  case "$1" in
    --readers) READERS=$2; shift 2 ;;
    --file-mib) FILE_MIB=$2; shift 2 ;;
    --caches) CACHES=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
W=${BENCH_DIR:-/var/tmp/s3rdmafs-rabench}
ROOT=/dev/shm/s3rdmafs-rabench-root  # the server's source in memory: we measure the client
AK=benchkey SK=benchsecret
mkdir -p "$ROOT/bench" "$W/mnt"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
for i in $(seq 0 $((READERS - 1))); do
  f=$ROOT/bench/r$i.bin
  [ "$(stat -c %s "$f" 2>/dev/null || echo 0)" = $((FILE_MIB << 20)) ] || head -c $((FILE_MIB << 20)) /dev/urandom > "$f"
done

BASE_BIN=
[ -n "$BASELINE" ] && BASE_BIN=$(baseline_bin "$W" "$BASELINE")

start_server "$W" "$ROOT"
cleanup() {
  mountpoint -q "$W/mnt" 2>/dev/null && { fusermount3 -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; }
  kill $SERVER 2>/dev/null || true
}
trap cleanup EXIT

metric() { curl -sf --unix-socket "$W/metrics.sock" http://localhost/metrics | awk -v m="$1" '$1 == m {print $2}'; }

# One run: prints "amplification wall_s used wasted"
run() {  # $1 = binary, $2 = cache size
  rm -f "$W/metrics.sock"
  "$1" bench "$W/mnt" -o s3.endpoint="$EP" -o cache.size="$2" -o metrics.listen=unix:"$W/metrics.sock" \
    --log-file "$W/mount.log"
  local before t0 t1 after used wasted
  before=$(metric s3rdmafs_http_bytes_received_total)
  t0=$(date +%s.%N)
  /usr/bin/python3 - "$W/mnt" "$READERS" <<'PY'
import sys, threading
mnt, n = sys.argv[1], int(sys.argv[2])
def read(i):
    with open(f"{mnt}/r{i}.bin", "rb") as f:
        while f.read(1 << 20):
            pass
ts = [threading.Thread(target=read, args=(i,)) for i in range(n)]
[t.start() for t in ts]
[t.join() for t in ts]
PY
  t1=$(date +%s.%N)
  after=$(metric s3rdmafs_http_bytes_received_total)
  used=$(metric 's3rdmafs_readahead_blocks_total{outcome="used"}'); used=${used:--}
  wasted=$(metric 's3rdmafs_readahead_blocks_total{outcome="wasted"}'); wasted=${wasted:--}
  fusermount3 -u "$W/mnt"
  awk -v a="$after" -v b="$before" -v r=$((READERS * (FILE_MIB << 20))) -v t0="$t0" -v t1="$t1" \
    -v u="$used" -v w="$wasted" 'BEGIN{printf "%.2fx %.1f %s %s\n", (a - b) / r, t1 - t0, u, w}'
}

echo
echo "$READERS sequential readers x $FILE_MIB MiB each, HTTP on loopback ($(nproc) cores)"
echo "fetched/read = bytes received over HTTP per byte read; RA = read-ahead blocks used/wasted"
printf '%-8s %14s %8s %12s   %18s %8s\n' "cache" "fetched/read" "wall s" "RA used/wst" \
  "${BASELINE:+@$BASELINE fetched/read}" "${BASELINE:+wall s}"
for c in $CACHES; do
  read -r amp wall used wasted < <(run "$REPO/build/src/s3rdmafs" "$c")
  bamp="" bwall=""
  [ -n "$BASE_BIN" ] && read -r bamp bwall _ _ < <(run "$BASE_BIN" "$c")
  printf '%-8s %14s %8s %12s   %18s %8s\n' "$c" "$amp" "$wall" "$used/$wasted" "$bamp" "$bwall"
done
