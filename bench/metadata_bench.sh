#!/usr/bin/env bash
# Metadata memory: daemon RSS and inodes against keys seen. `find -ls` walks
# (stat of every file) a tree of N empty keys (100 directories) on
# s3rdma-server over loopback; RSS is read before, right after the walk, and
# once idle (metadata.idle_forget and the TTLs passed). With --baseline REV the
# same for s3rdmafs built from REV (a git worktree, built once), side by side.
# Run as root after scripts/build.sh release.
#   bench/metadata_bench.sh [--keys "100000 1000000"] [--idle S] [--baseline REV]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. bench/lib.sh
KEYS="100000" IDLE=5 BASELINE=
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) KEYS=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
W=${BENCH_DIR:-/var/tmp/s3rdmafs-mbench}
ROOT=$W/root
AK=benchkey SK=benchsecret
mkdir -p "$ROOT" "$W/mnt"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK

BASE_BIN=
[ -n "$BASELINE" ] && BASE_BIN=$(baseline_bin "$W" "$BASELINE")

for n in $KEYS; do
  [ -f "$ROOT/b$n/.done" ] && continue
  echo "bench: making $n keys" >&2
  rm -rf "$ROOT/b$n"
  /usr/bin/python3 -c "
import os
for i in range($n):
    d = '$ROOT/b$n/d%02d' % (i % 100)
    if i < 100: os.makedirs(d)
    open(d + '/k%07d' % i, 'wb').close()
open('$ROOT/b$n/.done', 'w').close()"
done

start_server "$W" "$ROOT"
cleanup() {
  mountpoint -q "$W/mnt" 2>/dev/null && { fusermount3 -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; }
  kill $SERVER 2>/dev/null || true
}
trap cleanup EXIT

rss_mib() { awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

run() {  # $1 = binary, $2 = keys; prints "rss_before rss_walk rss_idle walk_s"
  # $3 set: this build's own key (the baseline may not know it)
  "$1" "b$2" "$W/mnt" -o s3.endpoint="$EP" -o cache.size=64M -o metadata.object_attributes=false \
    -o metadata.entry_ttl=2s -o metadata.attr_ttl=2s ${3:+-o metadata.idle_forget=${IDLE}s} \
    --log-file "$W/mount.log"
  local pid b t0 t1 w i
  pid=$(pgrep -f "$1 b$2 $W/mnt" | head -1)
  b=$(rss_mib "$pid")
  t0=$(date +%s.%N)
  find "$W/mnt" -type f -ls > /dev/null
  t1=$(date +%s.%N)
  w=$(rss_mib "$pid")
  # Idle: the TTLs and idle_forget pass, and the sweeper names at most
  # 20,000 inodes a second to the kernel.
  sleep $((IDLE * 2 + 4 + $2 / 20000))
  i=$(rss_mib "$pid")
  fusermount3 -u "$W/mnt"
  awk -v b="$b" -v w="$w" -v i="$i" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%s %s %s %.1f\n", b, w, i, t1 - t0}'
}

echo
echo "find -ls over N keys, then idle (2 x ${IDLE} s + 4 s + 1 s per 20k keys); daemon RSS in MiB (HTTP on loopback, $(nproc) cores)"
printf '%-10s %8s %8s %8s %8s   %10s %8s %8s %8s\n' "keys" "before" "walked" "idle" "walk s" \
  "${BASELINE:+@$BASELINE}" "${BASELINE:+walked}" "${BASELINE:+idle}" "${BASELINE:+walk s}"
for n in $KEYS; do
  read -r b w i t < <(run "$REPO/build/src/s3rdmafs" "$n" new)
  bb="" bw="" bi="" bt=""
  [ -n "$BASE_BIN" ] && read -r bb bw bi bt < <(run "$BASE_BIN" "$n" "")
  printf '%-10s %8s %8s %8s %8s   %10s %8s %8s %8s\n' "$n" "$b" "$w" "$i" "$t" "$bb" "$bw" "$bi" "$bt"
done
