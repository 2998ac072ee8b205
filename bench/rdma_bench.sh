#!/usr/bin/env bash
# RDMA vs HTTP read benchmark inside the Soft-RoCE guest (one boot): the same
# cold sequential read through s3rdmafs over the RC data path and over plain
# HTTP. Per row: MiB/s, S3 requests per GiB (RDMA GETs and plain GETs), and
# the daemon's and the server's CPU seconds per GiB moved. With
# --baseline-server BIN (an s3rdma-server built from older code) the RDMA
# row is repeated against it, side by side.
# These are correctness-grade numbers: the guest runs under TCG emulation
# (no KVM), so absolute MB/s mean little; requests per GiB and the CPU ratios
# are the figures to read.
#   bench/rdma_bench.sh [--size-mib N] [--baseline-server BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=256
BASELINE=
while [ $# -gt 0 ]; do
  case $1 in
    --size-mib) SIZE_MIB=$2; shift 2 ;;
    --baseline-server) BASELINE=$(realpath "$2"); shift 2 ;;
    *) echo "usage: $0 [--size-mib N] [--baseline-server BIN]" >&2; exit 2 ;;
  esac
done
if [ -z "${RXE_IP:-}" ]; then
  share=()
  [ -n "$BASELINE" ] && share=(--rw "$(dirname "$BASELINE")")
  exec tests/rdma/rxe-vm.sh --mem 3072 --timeout 1200 "${share[@]}" -- \
    bash bench/rdma_bench.sh --size-mib "$SIZE_MIB" ${BASELINE:+--baseline-server "$BASELINE"}
fi
REPO=$PWD
W=$(mktemp -d /tmp/rdma-bench.XXXXXX)
mkdir -p "$W/root/bench" "$W/mnt"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/root/bench/big.bin"
export AWS_ACCESS_KEY_ID=bk AWS_SECRET_ACCESS_KEY=bs
RPORT=18515
SERVER=
start_server() {  # $1 = the server binary
  rm -f "$W/port"
  "$1" --root "$W/root" --port 0 --port-file "$W/port" --access-key bk --secret-key bs \
    --rdma-listen "$RXE_IP:$RPORT" > "$W/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
  EP=http://127.0.0.1:$(cat "$W/port")
}
stop_server() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
trap 'stop_server; mountpoint -q $W/mnt && fusermount3 -u $W/mnt' EXIT
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
stat_of() { awk -v k="$1" '$1 == k {print $2}' "$W/stats"; }

run() {  # $1 = label, $2 = server binary, rest = -o options; prints a table row
  local label=$1 bin=$2; shift 2
  start_server "$bin"
  "$REPO/build/src/s3rdmafs" bench "$W/mnt" -o "s3.endpoint=$EP,cache.size=512M,log.stats_file=$W/stats" "$@" \
    --log-file "$W/fs.log"
  local pid; pid=$(pgrep -f "build/src/s3rdmafs bench $W/mnt" | head -1)
  local c0 c1 s0 s1 t0 t1
  c0=$(cpu "$pid"); s0=$(cpu "$SERVER"); t0=$(date +%s.%N)
  dd if="$W/mnt/big.bin" of=/dev/null bs=1M status=none
  t1=$(date +%s.%N); c1=$(cpu "$pid"); s1=$(cpu "$SERVER")
  sleep 1.2  # one more stats snapshot
  local rdma_bytes rdma_gets gets
  rdma_bytes=$(stat_of 's3rdmafs_data_bytes_total{transport="rdma"}')
  rdma_gets=$(stat_of 's3rdmafs_s3_requests_total{op="rdma_get"}')
  gets=$(stat_of 's3rdmafs_s3_requests_total{op="get"}')
  fusermount3 -u "$W/mnt"
  stop_server
  awk -v l="$label" -v s="$SIZE_MIB" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v s0="$s0" -v s1="$s1" \
      -v rb="$rdma_bytes" -v rg="$rdma_gets" -v g="$gets" 'BEGIN{
    gib = s / 1024
    printf "%-28s %8.1f %8.0f %8.0f %12.2f %12.2f %12.0f\n", l, s / (t1 - t0), rg / gib, g / gib,
           (c1 - c0) / 100 / gib, (s1 - s0) / 100 / gib, rb / 1048576 }'
}
echo
echo "Cold sequential read of ${SIZE_MIB} MiB in the Soft-RoCE guest (TCG: correctness-grade numbers)"
printf '%-28s %8s %8s %8s %12s %12s %12s\n' "transport" "MiB/s" "RDMA/GiB" "GET/GiB" "daemon s/GiB" \
  "server s/GiB" "MiB by RDMA"
run "rdma (RC)" "$REPO/build/server/s3rdma-server" -o "rdma.endpoint=$RXE_IP:$RPORT,rdma.required=true"
[ -n "$BASELINE" ] && run "rdma (RC), baseline server" "$BASELINE" \
  -o "rdma.endpoint=$RXE_IP:$RPORT,rdma.required=true"
run "http" "$REPO/build/server/s3rdma-server" -o "rdma.endpoint="
