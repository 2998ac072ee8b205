#!/usr/bin/env bash
# Write benchmark: s3rdmafs vs s3fs vs an aws CLI upload of the same file, all
# against the same s3rdma-server on loopback, in one run. Prints a table:
# sequential write of a multi-GiB file (dd from a page-cached source), 10,000
# small files created, the rename of a 1 GiB file, an HDF5 chunked dataset
# written with h5py, and SQLite inserts in transactions. With --baseline REV
# the same rows are measured for s3rdmafs built from REV (a git worktree,
# built once into build-baseline-REV), side by side.
# Run as root after scripts/build.sh release.
#   bench/write_bench.sh [--size-gib N] [--small N] [--no-peers] [--baseline REV]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
. bench/lib.sh
SIZE_GIB=2 SMALL=10000 PEERS=1 BASELINE=
while [ $# -gt 0 ]; do
  case "$1" in
    --size-gib) SIZE_GIB=$2; shift 2 ;;
    --small) SMALL=$2; shift 2 ;;
    --no-peers) PEERS=0; shift ;;
    --baseline) BASELINE=$2; shift 2 ;;
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

BASE_BIN=
[ -n "$BASELINE" ] && BASE_BIN=$(baseline_bin "$W" "$BASELINE")

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

SEQ_RUNS=3  # this VM's disk and loopback vary by 20% run to run: the median of three
seq_write() {  # $1 = target path; prints the median MB/s; the object must exist whole afterwards
  local t0 t1 runs=()
  for _ in $(seq $SEQ_RUNS); do
    t0=$(now)
    dd if="$src" of="$1" bs=1M status=none conv=fsync
    t1=$(now)
    [ "$(stat -c %s "$ROOT/bench/${1##*/}")" = $BYTES ] || { echo "bench: object incomplete" >&2; exit 1; }
    runs+=("$(mbps $BYTES "$(echo "$t1 - $t0" | bc)")")
    rm -f "$1"
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(( (SEQ_RUNS + 1) / 2 ))p"
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
hdf5_write() {  # $1 = mount; prints seconds to write a 256 MiB chunked dataset (or "fails")
  /usr/bin/python3 - "$1/data.h5" <<'PY' 2>/dev/null || echo fails
import sys, time, h5py, numpy
rows = numpy.random.default_rng(1).random((4096, 8192), dtype=numpy.float64).astype(numpy.float64)
t0 = time.time()
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_dataset("x", shape=rows.shape, dtype="f8", chunks=(64, 8192))
    for i in range(0, rows.shape[0], 256):
        d[i:i + 256] = rows[i:i + 256]
with h5py.File(sys.argv[1], "r") as f:
    assert numpy.array_equal(f["x"][1000:1010], rows[1000:1010])
print(f"{time.time() - t0:.2f}")
PY
}
sqlite_inserts() {  # $1 = mount; prints inserts/s, 100 transactions of 200 rows (or "fails")
  /usr/bin/python3 - "$1/bench.db" <<'PY' 2>/dev/null || echo fails
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1])
con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
t0 = time.time()
for b in range(100):
    with con:
        con.executemany("INSERT INTO t (body) VALUES (?)", [("x" * 200,)] * 200)
n = 100 * 200
assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
print(f"{n / (time.time() - t0):.0f}")
PY
}
measure_ours() {  # $1 = binary, $2 = label; sets R_<label>_* for the table
  drop_bucket
  local M=$W/mnt/$2; mkdir -p "$M"
  "$1" bench "$M" -o "s3.endpoint=$EP,cache.size=256M,write.staging_dir=$W/staging" \
    --log-file "$W/$2.log"
  local PID; PID=$(pgrep -f "$1 bench $M" | head -1)
  local c0 c1; c0=$(cpu_of $PID); eval "R_$2_SEQ=$(seq_write "$M/big.bin")"; c1=$(cpu_of $PID)
  eval "R_$2_CPU=$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB 'BEGIN{printf "%.2f", (b - a) / g / '$SEQ_RUNS'}')"
  eval "R_$2_SMALL=$(small_files "$M/small")"
  eval "R_$2_MV=$(rename_1g "$M")"
  eval "R_$2_H5=$(hdf5_write "$M")"
  eval "R_$2_SQL=$(sqlite_inserts "$M")"
  fusermount3 -u "$M"
}

# ---- aws CLI upload of the same file (multipart, its default 8 MiB parts, 10 threads)
drop_bucket
t0=$(now); /usr/bin/aws --endpoint-url "$EP" s3 cp "$src" s3://bench/big.bin --only-show-errors; t1=$(now)
AWS=$(mbps $BYTES "$(echo "$t1 - $t0" | bc)")

# ---- s3rdmafs (and the baseline build)
measure_ours "$REPO/build/src/s3rdmafs" ours
R_base_SEQ=- R_base_CPU=- R_base_SMALL=- R_base_MV=- R_base_H5=- R_base_SQL=-
[ -n "$BASE_BIN" ] && measure_ours "$BASE_BIN" base

S3FS=- S3FS_CPU=- S3FS_SMALL=- S3FS_MV=- S3FS_H5=- S3FS_SQL=-
if [ $PEERS = 1 ]; then
  drop_bucket
  M=$W/mnt/s3fs; mkdir -p "$M"
  echo "$AK:$SK" > "$W/s3fs.passwd"; chmod 600 "$W/s3fs.passwd"
  s3fs bench "$M" -o url="$EP",use_path_request_style,passwd_file="$W/s3fs.passwd",parallel_count=8,multipart_size=16
  for _ in $(seq 50); do mountpoint -q "$M" && break; sleep 0.1; done
  PID=$(pgrep -f "s3fs bench $M" | head -1)
  c0=$(cpu_of $PID); S3FS=$(seq_write "$M/big.bin"); c1=$(cpu_of $PID)
  S3FS_CPU=$(awk -v a=$c0 -v b=$c1 -v g=$SIZE_GIB -v r=$SEQ_RUNS 'BEGIN{printf "%.2f", (b - a) / g / r}')
  S3FS_SMALL=$(small_files "$M/small")
  S3FS_MV=$(rename_1g "$M")
  S3FS_H5=$(hdf5_write "$M")
  S3FS_SQL=$(sqlite_inserts "$M")
  fusermount3 -u "$M"
fi

echo
echo "Writes over HTTP on loopback ($(nproc) cores), one run"
row() { printf '%-58s %12s %14s %12s %12s\n' "$@"; }
row "" "s3rdmafs" "${BASELINE:+s3rdmafs@}${BASELINE:-(no baseline)}" "s3fs" "aws s3 cp"
row "sequential write of ${SIZE_GIB} GiB + fsync (MB/s, median of $SEQ_RUNS)" "$R_ours_SEQ" "$R_base_SEQ" "$S3FS" "$AWS"
row "  daemon CPU s/GiB" "$R_ours_CPU" "$R_base_CPU" "$S3FS_CPU" "-"
row "create $SMALL 4 KiB files, 8 writers (s)" "$R_ours_SMALL" "$R_base_SMALL" "$S3FS_SMALL" "-"
row "rename of a 1 GiB file (s)" "$R_ours_MV" "$R_base_MV" "$S3FS_MV" "-"
row "HDF5 256 MiB chunked dataset, h5py (s)" "$R_ours_H5" "$R_base_H5" "$S3FS_H5" "-"
row "SQLite inserts/s (100 x 200-row transactions)" "$R_ours_SQL" "$R_base_SQL" "$S3FS_SQL" "-"
