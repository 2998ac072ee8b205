#!/usr/bin/env bash
# Gateway mode (issue 14), one run, side by side: a cold sequential read of
# one big object by s3rdmafs straight on Ceph RGW over HTTP, and through 1, 2
# and 3 s3rdma-server gateways in front of the same RGW (HTTP between mount
# and gateways: this machine has no RDMA; the RDMA leg is checked in the
# Soft-RoCE guest by tests/rdma/test_rdma_gateway.py). Prints MB/s, the
# daemon's CPU per GiB, and the gateways' CPU per GiB (all gateways summed).
#   bench/gateway_bench.sh [--size-gib N] [--bluestore]
# RGW is memstore unless --bluestore (a sparse file in the work directory).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SIZE_GIB=2
STORE=
while [ $# -gt 0 ]; do
  case $1 in
    --size-gib) SIZE_GIB=$2; shift 2 ;;
    --bluestore) STORE=--bluestore; shift ;;
    *) echo "usage: $0 [--size-gib N] [--bluestore]" >&2; exit 2 ;;
  esac
done
W=$(mktemp -d /var/tmp/s3rdmafs-gwbench-XXXXXX)
GW_PIDS=()
cleanup() {
  for m in "$W"/mnt/*; do mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }; done
  for p in "${GW_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "$W/rgw/ceph.conf" || true
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/rgw" "$W/mnt"
rgw=$(/usr/bin/python3 tests/lib/radosgw.py "$W/rgw" $STORE) || exit 1
eval "$rgw"
BYTES=$((SIZE_GIB << 30))
echo "bench: loading ${SIZE_GIB} GiB into radosgw" >&2
/usr/bin/python3 - "$RGW_ENDPOINT" "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY" "$BYTES" <<'EOF'
import sys, boto3, boto3.s3.transfer as t
ep, ak, sk, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1")
s3.create_bucket(Bucket="bench")
class Gen:
    def __init__(self): self.left = n; self.block = bytes(range(256)) * 4096
    def read(self, k=-1):
        k = self.left if k < 0 else min(k, self.left)
        out = (self.block * (k // len(self.block) + 1))[:k]; self.left -= k; return out
s3.upload_fileobj(Gen(), "bench", "big.bin", Config=t.TransferConfig(multipart_chunksize=64 << 20, max_concurrency=4))
EOF

GK=GATEWAYKEY GS=gateway/secret
start_gateway() {  # $1 = index; appends its pid to GW_PIDS and its URL to GW_EPS
  rm -f "$W/gw$1.port"
  AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY \
    "$REPO/build/server/s3rdma-server" --upstream "$RGW_ENDPOINT" --port 0 --port-file "$W/gw$1.port" \
    --access-key $GK --secret-key $GS > "$W/gw$1.log" 2>&1 &
  GW_PIDS+=($!)
  for _ in $(seq 100); do [ -s "$W/gw$1.port" ] && break; sleep 0.05; done
}
for i in 0 1 2; do start_gateway $i; done
GW_EPS=()
for i in 0 1 2; do GW_EPS+=("http://127.0.0.1:$(cat "$W/gw$i.port")"); done

now() { date +%s.%N; }
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }  # user+system seconds (USER_HZ 100)
gw_cpu() { local s=0; for p in "${GW_PIDS[@]}"; do s=$(echo "$s + $(cpu_of "$p")" | bc); done; echo "$s"; }
per_gib() { awk -v a="$1" -v b="$2" -v g="$SIZE_GIB" 'BEGIN{printf "%.2f", (b - a) / g}'; }
# measure ENDPOINTS AK SK: a fresh mount, one cold dd of the object; prints
# "MB/s daemon-CPU-s/GiB gateway-CPU-s/GiB" (gateway CPU: all three summed).
measure() {
  local eps=$1 ak=$2 sk=$3 m=$W/mnt/m$RANDOM pid c0 c1 g0 g1 t0 t1
  mkdir -p "$m"
  AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk "$REPO/build/src/s3rdmafs" bench "$m" \
    -o "s3.endpoint=$eps,cache.size=1G" --log-file "$W/mount.log"
  pid=$(pgrep -f "build/src/s3rdmafs bench $m" | head -1)
  c0=$(cpu_of "$pid"); g0=$(gw_cpu); t0=$(now)
  dd if="$m/big.bin" of=/dev/null bs=1M status=none
  t1=$(now); c1=$(cpu_of "$pid"); g1=$(gw_cpu)
  fusermount3 -u "$m"
  echo "$(awk -v b=$BYTES -v t="$(echo "$t1 - $t0" | bc)" 'BEGIN{printf "%.0f", b / t / 1e6}')" \
    "$(per_gib "$c0" "$c1")" "$(per_gib "$g0" "$g1")"
}
median() { sort -n | awk '{v[NR] = $1} END{print v[int((NR + 1) / 2)]}'; }
# RGW's speed drifts for minutes after a load (a first read ran at half the
# speed of a later one): rounds interleave the four paths, and each row is
# the median of its rounds.
ROUNDS=3
NAMES=("mount straight on radosgw (HTTP)" "mount through 1 gateway" "mount through 2 gateways"
       "mount through 3 gateways")
EPS=("$RGW_ENDPOINT" "${GW_EPS[0]}" "${GW_EPS[0]};${GW_EPS[1]}" "${GW_EPS[0]};${GW_EPS[1]};${GW_EPS[2]}")
declare -A OUT
for r in $(seq $ROUNDS); do
  for i in 0 1 2 3; do
    if [ $i = 0 ]; then OUT[$i,$r]=$(measure "${EPS[$i]}" "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY")
    else OUT[$i,$r]=$(measure "${EPS[$i]}" $GK $GS); fi
  done
done
col() {  # $1 = path index, $2 = column: the median over the rounds
  for r in $(seq $ROUNDS); do echo "${OUT[$1,$r]}" | awk -v c="$2" '{print $c}'; done | median
}
ROWS=()
for i in 0 1 2 3; do
  all=$(for r in $(seq $ROUNDS); do echo "${OUT[$i,$r]}" | awk '{print $1}'; done | paste -sd/)
  gw=$(col $i 3); [ $i = 0 ] && gw=-
  ROWS+=("$(printf '%-34s %8s %-16s %16s %18s' "${NAMES[$i]}" "$(col $i 1)" "($all)" "$(col $i 2)" "$gw")")
done
echo
KIND=memstore; [ -n "$STORE" ] && KIND=bluestore
echo "cold sequential read of a ${SIZE_GIB} GiB object, radosgw (Ceph 16, $KIND), $(nproc) cores"
echo "medians of $ROUNDS interleaved rounds (each round's MB/s in brackets)"
printf '%-34s %8s %-16s %16s %18s\n' "path" "MB/s" "(rounds)" "daemon CPU s/GiB" "gateway CPU s/GiB"
printf '%s\n' "${ROWS[@]}"
