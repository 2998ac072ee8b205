#!/usr/bin/env bash
# RDMA vs HTTP read benchmark inside the Soft-RoCE guest (one boot): the same
# cold sequential read through s3rdmafs over the RC data path and over plain
# HTTP, with the daemon's CPU seconds per GiB. Under TCG emulation absolute
# MB/s mean little; the CPU ratio is the figure to read.
#   bench/rdma_bench.sh [--size-mib N]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=256
[ "${1:-}" = "--size-mib" ] && SIZE_MIB=$2
if [ -z "${RXE_IP:-}" ]; then
  exec tests/rdma/rxe-vm.sh --mem 3072 --timeout 1200 -- bash bench/rdma_bench.sh --size-mib "$SIZE_MIB"
fi
REPO=$PWD
W=$(mktemp -d /tmp/rdma-bench.XXXXXX)
mkdir -p "$W/root/bench" "$W/mnt"
head -c $((SIZE_MIB << 20)) /dev/urandom > "$W/root/bench/big.bin"
export AWS_ACCESS_KEY_ID=bk AWS_SECRET_ACCESS_KEY=bs
RPORT=18515
"$REPO/build/server/s3rdma-server" --root "$W/root" --port 0 --port-file "$W/port" --access-key bk --secret-key bs \
  --rdma-listen "$RXE_IP:$RPORT" > "$W/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; mountpoint -q $W/mnt && fusermount3 -u $W/mnt' EXIT
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
EP=http://127.0.0.1:$(cat "$W/port")

run() {  # $1 = label, rest = -o options; prints a table row
  local label=$1; shift
  "$REPO/build/src/s3rdmafs" bench "$W/mnt" -o "s3.endpoint=$EP,cache.size=512M,log.stats_file=$W/stats" "$@" \
    --log-file "$W/fs.log"
  local pid; pid=$(pgrep -f "build/src/s3rdmafs bench $W/mnt" | head -1)
  local c0 c1 t0 t1
  c0=$(awk '{print $14 + $15}' /proc/$pid/stat); t0=$(date +%s.%N)
  dd if="$W/mnt/big.bin" of=/dev/null bs=1M status=none
  t1=$(date +%s.%N); c1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  sleep 1.2  # one more stats snapshot
  local rdma_bytes; rdma_bytes=$(awk -F' ' '/^s3rdmafs_data_bytes_total{transport="rdma"}/{print $2}' "$W/stats")
  fusermount3 -u "$W/mnt"
  awk -v l="$label" -v s=$SIZE_MIB -v t0=$t0 -v t1=$t1 -v c0=$c0 -v c1=$c1 -v rb="$rdma_bytes" 'BEGIN{
    printf "%-22s %10.1f %16.2f %16.0f\n", l, s / (t1 - t0), (c1 - c0) / 100 / (s / 1024), rb / 1048576 }'
}
echo
echo "Cold sequential read of ${SIZE_MIB} MiB in the Soft-RoCE guest (TCG): daemon CPU per GiB moved"
printf '%-22s %10s %16s %16s\n' "transport" "MiB/s" "CPU s/GiB" "MiB by RDMA"
run "rdma (RC)" -o "rdma.endpoint=$RXE_IP:$RPORT,rdma.required=true"
run "http" -o "rdma.endpoint="
