#!/usr/bin/env bash
# Read benchmark: s3rdmafs vs s3fs vs rclone mount vs parallel curl range GETs
# (the HTTP ceiling), all against the same server on loopback, in one run.
# Prints a table. Run as root after scripts/build.sh release.
#   bench/read_bench.sh [--size-gib N] [--small N] [--small-kib K] [--keys N] [--no-peers] [--radosgw]
# The server is s3rdma-server over a local directory (quick), or with
# --radosgw a Ceph RGW on bluestore in a temporary directory
# (tests/lib/radosgw.py), loaded with the same dataset by boto3 each run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SIZE_GIB=4 SMALL=10000 SMALL_KIB=4 KEYS=100000 PEERS=1 RADOSGW=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size-gib) SIZE_GIB=$2; shift 2 ;;
    --small) SMALL=$2; shift 2 ;;
    --small-kib) SMALL_KIB=$2; shift 2 ;;
    --keys) KEYS=$2; shift 2 ;;
    --no-peers) PEERS=0; shift ;;
    --radosgw) RADOSGW=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
W=${BENCH_DIR:-/var/tmp/s3rdmafs-bench}
AK=benchkey SK=benchsecret
mkdir -p "$W/root/bench" "$W/mnt"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK

# ---- data (kept between runs)
big=$W/root/bench/big.bin
if [ "$(stat -c %s "$big" 2>/dev/null || echo 0)" != $((SIZE_GIB << 30)) ]; then
  echo "bench: writing a ${SIZE_GIB} GiB object" >&2
  head -c $((SIZE_GIB << 30)) /dev/urandom > "$big"
fi
if [ ! -f "$W/root/bench/small/.done-$SMALL-$SMALL_KIB" ]; then
  rm -rf "$W/root/bench/small"; mkdir -p "$W/root/bench/small"
  /usr/bin/python3 -c "
import os
for i in range($SMALL):
    d = '$W/root/bench/small/%03d' % (i // 1000)
    os.makedirs(d, exist_ok=True)
    open(d + '/f%06d' % i, 'wb').write(os.urandom($SMALL_KIB * 1024))"
  touch "$W/root/bench/small/.done-$SMALL-$SMALL_KIB"
fi
if [ ! -f "$W/root/bench/flat/.done-$KEYS" ]; then
  rm -rf "$W/root/bench/flat"; mkdir -p "$W/root/bench/flat"
  /usr/bin/python3 -c "
for i in range($KEYS): open('$W/root/bench/flat/key-%06d' % i, 'wb').close()"
  touch "$W/root/bench/flat/.done-$KEYS"
fi
cat "$big" > /dev/null  # the server's source in the page cache: we measure clients, not the disk
# Touch free memory right before each cold read: on VMs the first touch of
# guest memory is slow (hypervisor faults) and lands on whichever process
# copies into the page (the daemon filling the page cache); the host takes
# free pages back within a minute, so touching once at the start is not enough.
touch_memory() {
  /usr/bin/python3 -c "
import mmap
n = min(int(open('/proc/meminfo').read().split('MemAvailable:')[1].split()[0]) * 1024 // 2, 12 << 30)
m = mmap.mmap(-1, n)
for off in range(0, n, 4096): m[off] = 1
"
}


# ---- server
SERVER=
# fuse.splice_reads needs 4 MiB pipes: where the daemon lacks CAP_SYS_RESOURCE
# (containers), fs.pipe-max-size must allow them. Raised for the run, put back after.
OLD_PIPE_MAX=$(cat /proc/sys/fs/pipe-max-size)
[ "$OLD_PIPE_MAX" -ge $((4 << 20)) ] || echo $((4 << 20)) > /proc/sys/fs/pipe-max-size
cleanup() {
  echo "$OLD_PIPE_MAX" > /proc/sys/fs/pipe-max-size
  for m in "$W"/mnt/*; do mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }; done
  [ -n "$SERVER" ] && kill $SERVER 2>/dev/null
  [ $RADOSGW = 1 ] && pkill -f "$W/rgw/ceph.conf"
  true
}
trap cleanup EXIT
if [ $RADOSGW = 1 ]; then
  rm -rf "$W/rgw"; mkdir -p "$W/rgw"
  rgw=$(/usr/bin/python3 tests/lib/radosgw.py "$W/rgw" --bluestore) || exit 1
  eval "$rgw"
  AK=$RGW_ACCESS_KEY SK=$RGW_SECRET_KEY EP=$RGW_ENDPOINT
  export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
  SERVER_NAME="radosgw (Ceph 16, bluestore)"
  echo "bench: loading the dataset into radosgw" >&2
  t0=$(date +%s)
  /usr/bin/python3 bench/s3_load.py "$EP" "$AK" "$SK" "$W/root/bench" bench
  echo "bench: loaded in $(( $(date +%s) - t0 )) s" >&2
else
  rm -f "$W/port"
  "$REPO/build/server/s3rdma-server" --root "$W/root" --port 0 --port-file "$W/port" --access-key $AK --secret-key $SK \
    > "$W/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
  EP=http://127.0.0.1:$(cat "$W/port")
  SERVER_NAME="s3rdma-server"
fi
# The mount's own count of S3 requests (all kinds), from its metrics socket.
requests() {
  curl -s --unix-socket "$W/metrics.sock" http://localhost/metrics |
    awk '/^s3rdmafs_s3_requests_total/{s += $2} END{printf "%d", s}'
}
OURS=$((KEYS / 10))  # files written through s3rdmafs, listed by everyone

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN{printf "%.0f", b / t / 1e6}'; }
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }  # user+system seconds (USER_HZ 100)
rss_peak() { awk '/VmHWM/{printf "%.0f", $2/1024}' "/proc/$1/status"; }
BYTES=$((SIZE_GIB << 30))
ROWS=()
row() { ROWS+=("$(printf '%-34s %12s %14s %14s' "$@")"); }

# ---- the HTTP ceiling: 8 kept-alive curl connections, connection i taking
# ranges i, i + 8, i + 16 ... of $1 bytes each, in turn; prints MB/s.
curl_ranges() {
  local chunk=$1 t0 t1 i off args pids=()
  local sign=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
  t0=$(now)
  for i in $(seq 0 7); do
    args=()
    for ((off = i * chunk; off < BYTES; off += 8 * chunk)); do
      [ ${#args[@]} -gt 0 ] && args+=(--next)
      args+=(-sf -o /dev/null "${sign[@]}" -r $off-$((off + chunk - 1)) "$EP/bench/big.bin")
    done
    curl "${args[@]}" &
    pids+=($!)
  done
  wait "${pids[@]}"
  t1=$(now)
  mbps $BYTES "$(echo "$t1 - $t0" | bc)"
}
# One range of an eighth of the object per connection (a tuned downloader),
# and 8 MiB ranges moving along the object together (the mount's read-ahead
# pattern, which a server like radosgw may serve faster): the better is the ceiling.
CURL_EIGHTHS=$(curl_ranges $((BYTES / 8)))
row "curl, 8 x 1/8 of the object" "$CURL_EIGHTHS" "-" "-"
CURL_CHUNKS=$(curl_ranges $((8 << 20)))
row "curl, 8 x 8 MiB range GETs in turn" "$CURL_CHUNKS" "-" "-"
CURL=$(awk -v a=$CURL_EIGHTHS -v b=$CURL_CHUNKS 'BEGIN{print (a > b ? a : b)}')

read_file() {  # $1 = path; prints MB/s
  local t0 t1; t0=$(now); dd if="$1" of=/dev/null bs=1M status=none; t1=$(now)
  mbps $BYTES "$(echo "$t1 - $t0" | bc)"
}
small_files() {  # $1 = dir; prints files/s with 8 parallel readers
  local t0 t1; t0=$(now)
  find "$1" -type f -name 'f*' -print0 | xargs -0 -n 64 -P 8 cat > /dev/null
  t1=$(now); awk -v n=$SMALL -v t="$(echo "$t1 - $t0" | bc)" 'BEGIN{printf "%.0f", n / t}'
}
ls_keys() {  # $1 = dir; prints seconds
  local t0 t1; t0=$(now); ls -l "$1" > /dev/null; t1=$(now); echo "$t1 - $t0" | bc | awk '{printf "%.1f", $1}'
}

# ---- s3rdmafs
M=$W/mnt/s3rdmafs; mkdir -p "$M"
MOPTS="s3.endpoint=$EP,cache.size=1G,metrics.listen=unix:$W/metrics.sock"
per_gib() { awk -v a=$1 -v b=$2 -v g=$SIZE_GIB 'BEGIN{printf "%.0f", (b - a) / g}'; }
"$REPO/build/src/s3rdmafs" bench "$M" -o "$MOPTS" --log-file "$W/s3rdmafs.log"
PID=$(pgrep -f "build/src/s3rdmafs bench $M" | head -1)
touch_memory; c0=$(cpu_of $PID); r0=$(requests); COLD=$(read_file "$M/big.bin"); c1=$(cpu_of $PID); r1=$(requests)
CPU_GIB=$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g}')
row "s3rdmafs cold sequential read" "$COLD" "$CPU_GIB" "$(per_gib $r0 $r1)"
WARM=$(read_file "$M/big.bin")
row "s3rdmafs warm re-read" "$WARM" "-" "-"
r0=$(requests); SMALL_RATE=$(small_files "$M/small"); r1=$(requests)
SMALL_REQS=$(awk -v a=$r0 -v b=$r1 -v n=$SMALL 'BEGIN{printf "%.2f", (b - a) / n}')
if [ ! -d "$M/ours" ]; then  # what s3rdmafs wrote: modes and owners in its records
  echo "bench: writing $OURS files through s3rdmafs" >&2
  mkdir "$M/ours"
  /usr/bin/python3 -c "
import os
for i in range($OURS):
    p = '$M/ours/mine-%06d' % i
    open(p, 'w').close()
    os.chmod(p, 0o600 + i % 8)"
fi
fusermount3 -u "$M"
# The same cold read as before direct receive: libcurl receives each body into
# its own buffer and the daemon copies it into the cache blocks.
"$REPO/build/src/s3rdmafs" bench "$M" -o "$MOPTS,s3.direct_receive=false" --log-file "$W/s3rdmafs.log"
PID=$(pgrep -f "build/src/s3rdmafs bench $M" | head -1)
touch_memory; c0=$(cpu_of $PID); r0=$(requests); CURLRX=$(read_file "$M/big.bin"); c1=$(cpu_of $PID); r1=$(requests)
row "s3rdmafs cold, s3.direct_receive=false" "$CURLRX" "$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g}')" "$(per_gib $r0 $r1)"
fusermount3 -u "$M"
# The same cold read with the kernel page cache bypassed (fuse.direct_io: 1 MiB requests).
"$REPO/build/src/s3rdmafs" bench "$M" -o "$MOPTS,fuse.direct_io=true" --log-file "$W/s3rdmafs.log"
PID=$(pgrep -f "build/src/s3rdmafs bench $M" | head -1)
touch_memory; c0=$(cpu_of $PID); r0=$(requests); DIO=$(read_file "$M/big.bin"); c1=$(cpu_of $PID); r1=$(requests)
row "s3rdmafs cold, fuse.direct_io=true" "$DIO" "$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g}')" "$(per_gib $r0 $r1)"
DIO_WARM=$(read_file "$M/big.bin")
# The object is larger than cache.size (1 GiB) unless --size-gib 1: then this
# re-read fetches again, and says what a re-read costs without the page cache.
row "s3rdmafs re-read, direct_io$([ "$SIZE_GIB" -gt 1 ] && echo ' (>cache)')" "$DIO_WARM" "-" "-"
LS=$(ls_keys "$M/flat")
LS_OURS=$(ls_keys "$M/ours")
RSS=$(rss_peak $PID)
fusermount3 -u "$M"
# direct_io as before streamed reads: the bytes copied into cache blocks and out again.
"$REPO/build/src/s3rdmafs" bench "$M" -o "$MOPTS,fuse.direct_io=true,fuse.splice_reads=false" --log-file "$W/s3rdmafs.log"
PID=$(pgrep -f "build/src/s3rdmafs bench $M" | head -1)
touch_memory; c0=$(cpu_of $PID); r0=$(requests); DIO_COPY=$(read_file "$M/big.bin"); c1=$(cpu_of $PID); r1=$(requests)
row "s3rdmafs cold, direct_io, fuse.splice_reads=false" "$DIO_COPY" "$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g}')" "$(per_gib $r0 $r1)"
fusermount3 -u "$M"
# The previous default: a HEAD per listed file (metadata.listing = "heads").
"$REPO/build/src/s3rdmafs" bench "$M" -o "$MOPTS,metadata.listing=heads" --log-file "$W/s3rdmafs.log"
HEADS_LS=$(timeout 600 bash -c "$(declare -f now ls_keys); ls_keys $M/flat" || echo ">600")
HEADS_LS_OURS=$(ls_keys "$M/ours")
HEADS_SMALL=$(small_files "$M/small")
fusermount3 -u "$M"

# ---- tmpfs reference for the warm re-read
cp "$big" /dev/shm/s3rdmafs-bench.bin
TMPFS=$(read_file /dev/shm/s3rdmafs-bench.bin)
rm -f /dev/shm/s3rdmafs-bench.bin
row "tmpfs re-read (reference)" "$TMPFS" "-" "-"

S3FS_COLD=- S3FS_CPU=- S3FS_SMALL=- S3FS_LS=- S3FS_LS_OURS=- S3FS_RSS=-
RC_COLD=- RC_CPU=- RC_SMALL=- RC_LS=- RC_LS_OURS=- RC_RSS=-
if [ $PEERS = 1 ]; then
  # ---- s3fs (FUSE, libcurl), its usual tuning for large sequential reads
  M=$W/mnt/s3fs; mkdir -p "$M"
  echo "$AK:$SK" > "$W/s3fs.passwd"; chmod 600 "$W/s3fs.passwd"
  s3fs bench "$M" -o url="$EP",use_path_request_style,passwd_file="$W/s3fs.passwd",parallel_count=8,multipart_size=16,ro
  for _ in $(seq 50); do mountpoint -q "$M" && break; sleep 0.1; done
  PID=$(pgrep -f "s3fs bench $M" | head -1)
  touch_memory; c0=$(cpu_of $PID); S3FS_COLD=$(read_file "$M/big.bin"); c1=$(cpu_of $PID)
  S3FS_CPU=$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g}')
  S3FS_SMALL=$(small_files "$M/small")
  S3FS_LS=$(timeout 600 bash -c "$(declare -f now ls_keys); ls_keys $M/flat" || echo ">600")
  S3FS_LS_OURS=$(timeout 600 bash -c "$(declare -f now ls_keys); ls_keys $M/ours" || echo ">600")
  S3FS_RSS=$(rss_peak $PID)
  fusermount3 -u "$M"

  # ---- rclone mount, no VFS cache (streams like we do)
  M=$W/mnt/rclone; mkdir -p "$M"
  export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENDPOINT=$EP \
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AK RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$SK RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
  env -u AWS_CA_BUNDLE rclone mount bench:bench "$M" --read-only --vfs-cache-mode off --daemon --log-file "$W/rclone.log"
  for _ in $(seq 50); do mountpoint -q "$M" && break; sleep 0.1; done
  PID=$(pgrep -f "rclone mount bench:bench" | head -1)
  touch_memory; c0=$(cpu_of $PID); RC_COLD=$(read_file "$M/big.bin"); c1=$(cpu_of $PID)
  RC_CPU=$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g}')
  RC_SMALL=$(small_files "$M/small")
  RC_LS=$(timeout 600 bash -c "$(declare -f now ls_keys); ls_keys $M/flat" || echo ">600")
  RC_LS_OURS=$(timeout 600 bash -c "$(declare -f now ls_keys); ls_keys $M/ours" || echo ">600")
  RC_RSS=$(rss_peak $PID)
  fusermount3 -u "$M"
fi
row "s3fs cold sequential read" "$S3FS_COLD" "$S3FS_CPU" "-"
row "rclone mount cold sequential read" "$RC_COLD" "$RC_CPU" "-"

echo
echo "Sequential read of a ${SIZE_GIB} GiB object over HTTP from $SERVER_NAME on loopback ($(nproc) cores)"
printf '%-34s %12s %14s %14s\n' "client" "MB/s" "CPU s/GiB" "requests/GiB"
for r in "${ROWS[@]}"; do echo "$r"; done
echo
printf '%-40s %10s %10s %10s %10s\n' "" "s3rdmafs" "(heads)" "s3fs" "rclone"
printf '%-40s %10s %10s %10s %10s\n' "$SMALL x $SMALL_KIB KiB files, 8 readers (files/s)" "$SMALL_RATE" "$HEADS_SMALL" "$S3FS_SMALL" "$RC_SMALL"
printf '%-40s %10s %10s %10s %10s\n' "  requests per small file, s3rdmafs" "$SMALL_REQS" "-" "-" "-"
printf '%-40s %10s %10s %10s %10s\n' "ls -l of $KEYS keys boto3 wrote (s)" "$LS" "$HEADS_LS" "$S3FS_LS" "$RC_LS"
printf '%-40s %10s %10s %10s %10s\n' "ls -l of $OURS files s3rdmafs wrote (s)" "$LS_OURS" "$HEADS_LS_OURS" "$S3FS_LS_OURS" "$RC_LS_OURS"
printf '%-40s %10s %10s %10s %10s\n' "peak daemon RSS (MiB)" "$RSS" "-" "$S3FS_RSS" "$RC_RSS"
echo "(heads): s3rdmafs with metadata.listing = \"heads\", the previous default (a HEAD per listed file)"
echo
awk -v c=$COLD -v k=$CURL -v s=$S3FS_COLD -v w=$WARM -v t=$TMPFS 'BEGIN{
  printf "ratios: cold/curl %.2f", c / k; if (s + 0 > 0) printf ", cold/s3fs %.2f", c / s; printf ", warm/tmpfs %.2f\n", w / t }'
