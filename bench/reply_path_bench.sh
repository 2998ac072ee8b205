#!/usr/bin/env bash
# The kernel's floor under a direct_io read, by reply path: CPU per GiB of the
# FUSE server while dd reads a stream it is fed over loopback TCP, with
# nothing of s3rdmafs in between (bench/reply_path_floor.cc):
#   copy    socket -> cache-like arena (readv), then fuse_reply_iov: the
#           path s3rdmafs takes today with fuse.direct_io
#   splice  socket -> pipe (splice), then fuse_reply_data from the pipe
# Rounds alternate the two; the table shows each one's median. A 1 MiB
# reply needs a pipe over 1 MiB: fs.pipe-max-size is raised to 4 MiB for the
# run (unless the process has CAP_SYS_RESOURCE) and put back after.
# Run as root:  bench/reply_path_bench.sh [--rounds N] [--gib N]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=5 GIB=4
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --gib) GIB=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
W=${BENCH_DIR:-/var/tmp/s3rdmafs-replybench}
mkdir -p "$W/mnt"
BIN=$W/reply_path_floor
# shellcheck disable=SC2046
g++ -std=c++20 -O2 -Wall -o "$BIN" bench/reply_path_floor.cc $(pkg-config --cflags --libs fuse3)

OLD_PIPE_MAX=$(cat /proc/sys/fs/pipe-max-size)
cleanup() {
  mountpoint -q "$W/mnt" 2>/dev/null && { fusermount3 -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; }
  echo "$OLD_PIPE_MAX" > /proc/sys/fs/pipe-max-size
}
trap cleanup EXIT
[ "$OLD_PIPE_MAX" -ge $((4 << 20)) ] || echo $((4 << 20)) > /proc/sys/fs/pipe-max-size

TICK=$(getconf CLK_TCK)
# one MODE: prints "cpu_s_per_gib mb_per_s"
one() {
  local mode=$1 pid c0 c1 t0 t1
  "$BIN" "$mode" "$W/mnt" & pid=$!
  for _ in $(seq 200); do mountpoint -q "$W/mnt" && break; sleep 0.05; done
  mountpoint -q "$W/mnt" || { echo "bench: the $mode server did not mount" >&2; exit 1; }
  c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  t0=$(date +%s.%N)
  timeout 120 dd if="$W/mnt/f" of=/dev/null bs=1M count=$((GIB << 10)) status=none
  t1=$(date +%s.%N)
  c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  fusermount3 -u "$W/mnt"
  wait "$pid"
  awk -v a="$c0" -v b="$c1" -v t="$TICK" -v g="$GIB" -v t0="$t0" -v t1="$t1" \
    'BEGIN{printf "%.3f %.0f\n", (b-a)/t/g, g*1073741824/(t1-t0)/1e6}'
}
median() { sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

: > "$W/copy.txt"; : > "$W/splice.txt"
for r in $(seq "$ROUNDS"); do
  one copy >> "$W/copy.txt"
  one splice >> "$W/splice.txt"
  echo "round $r: copy $(tail -1 "$W/copy.txt")  splice $(tail -1 "$W/splice.txt")" >&2
done
cc=$(cut -d' ' -f1 "$W/copy.txt" | median); cm=$(cut -d' ' -f2 "$W/copy.txt" | median)
sc=$(cut -d' ' -f1 "$W/splice.txt" | median); sm=$(cut -d' ' -f2 "$W/splice.txt" | median)
echo
echo "direct_io read of a loopback TCP stream, $GIB GiB x $ROUNDS rounds (medians), dd bs=1M"
printf '| %-44s | %-18s | %-8s |\n' "reply path" "server CPU s/GiB" "MB/s"
printf '|%s|%s|%s|\n' "----------------------------------------------" "--------------------" "----------"
printf '| %-44s | %-18s | %-8s |\n' "copy: readv into arena + fuse_reply_iov" "$cc" "$cm"
printf '| %-44s | %-18s | %-8s |\n' "splice: socket -> pipe -> fuse_reply_data" "$sc" "$sm"
awk -v c="$cc" -v s="$sc" 'BEGIN{ if (s > 0) printf "splice takes %.2fx less CPU per GiB than copy\n", c/s }'
