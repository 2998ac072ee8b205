#!/usr/bin/env bash
# Write benchmark: s3rdmafs vs s3fs vs an aws CLI upload of the same file, all
# against the same s3rdma-server on loopback, in one run. Prints a table:
# sequential write of a multi-GiB file (dd from a page-cached source), 10,000
# small files created, and the rename of a 1 GiB file.
# Run as root after scripts/build.sh release.
#   bench/write_bench.sh [--size-gib N] [--small N] [--no-peers]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SIZE_GIB=2 SMALL=10000 PEERS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size-gib) SIZE_GIB=$2; shift 2 ;;
    --small) SMALL=$2; shift 2 ;;
    --no-peers) PEERS=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
W=${BENCH_DIR:-/var/tmp/s3rdmafs-wbench}
# The server keeps objects in memory (tmpfs): we measure the writers, not this
# VM's disk (which managed ~100 MB/s of page-cache writeback under load).
ROOT=${BENCH_ROOT:-/dev/shm/s3rdmafs-wbench-root}
AK=benchkey SK=benchsecret
rm -rf "$ROOT"; mkdir -p "$ROOT/bench" "$W/mnt" "$W/src"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_DEFAULT_REGION=us-east-1
BYTES=$((SIZE_GIB << 30))
src=$W/src/big.bin
if [ "$(stat -c %s "$src" 2>/dev/null || echo 0)" != $BYTES ]; then
  echo "bench: writing a ${SIZE_GIB} GiB source file" >&2
  head -c $BYTES /dev/urandom > "$src"
fi
cat "$src" > /dev/null  # the source in the page cache: we measure the writers, not the disk
head -c $((1 << 30)) "$src" > "$W/src/one.bin"

rm -f "$W/port"
"$REPO/build/server/s3rdma-server" --root "$ROOT" --port 0 --port-file "$W/port" --access-key $AK --secret-key $SK \
  > "$W/server.log" 2>&1 &
SERVER=$!
cleanup() {
  for m in "$W"/mnt/*; do mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }; done
  kill $SERVER 2>/dev/null || true
  rm -rf "$ROOT"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
EP=http://127.0.0.1:$(cat "$W/port")

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc | awk '{printf "%.2f", $1}'; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN{printf "%.0f", b / t / 1e6}'; }
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
drop_bucket() { rm -rf "$ROOT/bench"; mkdir -p "$ROOT/bench"; }

seq_write() {  # $1 = target path; prints "MB/s"; the object must exist whole afterwards
  local t0 t1; t0=$(now)
  dd if="$src" of="$1" bs=1M status=none conv=fsync
  t1=$(now)
  [ "$(stat -c %s "$ROOT/bench/${1##*/}")" = $BYTES ] || { echo "bench: object incomplete" >&2; exit 1; }
  mbps $BYTES "$(echo "$t1 - $t0" | bc)"
}
small_files() {  # $1 = dir; prints seconds to create $SMALL 4 KiB files with 8 writers
  mkdir -p "$1"
  local t0 t1; t0=$(now)
  seq 0 $((SMALL - 1)) | xargs -P 8 -n 250 sh -c 'for i; do head -c 4096 /dev/zero > "'"$1"'/f$i"; done' _
  t1=$(now); secs "$t0" "$t1"
}
rename_1g() {  # $1 = mount; prints seconds for mv of a 1 GiB file
  cp "$W/src/one.bin" "$1/one.bin"
  local t0 t1; t0=$(now); mv "$1/one.bin" "$1/moved.bin"; t1=$(now); secs "$t0" "$t1"
}

# ---- aws CLI upload of the same file (multipart, its default 8 MiB parts, 10 threads)
drop_bucket
t0=$(now); /usr/bin/aws --endpoint-url "$EP" s3 cp "$src" s3://bench/big.bin --only-show-errors; t1=$(now)
AWS=$(mbps $BYTES "$(echo "$t1 - $t0" | bc)")

# ---- s3rdmafs
drop_bucket
M=$W/mnt/s3rdmafs; mkdir -p "$M"
"$REPO/build/src/s3rdmafs" bench "$M" -o "s3.endpoint=$EP,cache.size=256M,write.staging_dir=$W/staging" \
  --log-file "$W/s3rdmafs.log"
PID=$(pgrep -f "build/src/s3rdmafs bench $M" | head -1)
c0=$(cpu_of $PID); OURS=$(seq_write "$M/big.bin"); c1=$(cpu_of $PID)
OURS_CPU=$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g}')
OURS_SMALL=$(small_files "$M/small")
OURS_MV=$(rename_1g "$M")
fusermount3 -u "$M"

S3FS=- S3FS_CPU=- S3FS_SMALL=- S3FS_MV=-
if [ $PEERS = 1 ]; then
  drop_bucket
  M=$W/mnt/s3fs; mkdir -p "$M"
  echo "$AK:$SK" > "$W/s3fs.passwd"; chmod 600 "$W/s3fs.passwd"
  s3fs bench "$M" -o url="$EP",use_path_request_style,passwd_file="$W/s3fs.passwd",parallel_count=8,multipart_size=16
  for _ in $(seq 50); do mountpoint -q "$M" && break; sleep 0.1; done
  PID=$(pgrep -f "s3fs bench $M" | head -1)
  c0=$(cpu_of $PID); S3FS=$(seq_write "$M/big.bin"); c1=$(cpu_of $PID)
  S3FS_CPU=$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g}')
  S3FS_SMALL=$(small_files "$M/small")
  S3FS_MV=$(rename_1g "$M")
  fusermount3 -u "$M"
fi

echo
echo "Writes over HTTP on loopback ($(nproc) cores), one run"
printf '%-44s %12s %12s %12s\n' "" "s3rdmafs" "s3fs" "aws s3 cp"
printf '%-44s %12s %12s %12s\n' "sequential write of ${SIZE_GIB} GiB + fsync (MB/s)" "$OURS" "$S3FS" "$AWS"
printf '%-44s %12s %12s %12s\n' "  daemon CPU s/GiB" "$OURS_CPU" "$S3FS_CPU" "-"
printf '%-44s %12s %12s %12s\n' "create $SMALL 4 KiB files, 8 writers (s)" "$OURS_SMALL" "$S3FS_SMALL" "-"
printf '%-44s %12s %12s %12s\n' "rename of a 1 GiB file (s)" "$OURS_MV" "$S3FS_MV" "-"
