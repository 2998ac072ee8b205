#!/usr/bin/env bash
# Inside the Soft-RoCE guest (scripts/demo.sh rdma boots it): the demo over
# the RDMA data path. s3rdma-server serves a small dataset with its RC
# listener on the guest's rxe device; s3rdmafs mounts it with
# rdma.endpoint set; reads and a write go through the mount, and the bytes
# moved by each transport are printed. TCG emulation: speeds are not
# meaningful here, the transports are.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# On the shared build directory: the guest's /tmp (tmpfs under overlayfs)
# keeps no user xattrs, where the server stores object metadata.
mkdir -p "$REPO/build/guest-tmp"
W=$(mktemp -d "$REPO/build/guest-tmp/demo-rdma.XXXXXX")
d=$W/root/demo
mkdir -p "$d/train" "$d/checkpoints" "$W/mnt"
for i in 0 1 2 3; do head -c $((8 << 20)) /dev/urandom > "$d/train/shard-000$i.bin"; done
head -c $((64 << 20)) /dev/urandom > "$d/checkpoints/model-epoch-3.bin"
AK=demo$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
SK=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
RPORT=18600
"$REPO/build/server/s3rdma-server" --root "$W/root" --port 0 --port-file "$W/port" --access-key "$AK" \
  --secret-key "$SK" --rdma-listen "$RXE_IP:$RPORT" --log-level debug > "$W/server.log" 2>&1 &
SERVER=$!
trap 'mountpoint -q "$W/mnt" && fusermount3 -u "$W/mnt"; kill $SERVER 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK "$REPO/build/src/s3rdmafs" demo "$W/mnt" \
  -o "s3.endpoint=http://127.0.0.1:$(cat "$W/port"),rdma.endpoint=$RXE_IP:$RPORT,rdma.required=true" \
  -o "cache.size=256M,log.stats_file=$W/stats,write.staging_dir=$W/staging" --log-file "$W/s3rdmafs.log"
echo
echo "demo (RDMA): bucket 'demo' mounted at $W/mnt over RC on $(ls /sys/class/infiniband)"
ls -l "$W/mnt" "$W/mnt/train"
a=$(sha256sum < "$d/checkpoints/model-epoch-3.bin"); b=$(sha256sum < "$W/mnt/checkpoints/model-epoch-3.bin")
[ "$a" = "$b" ] && echo "demo: checkpoints/model-epoch-3.bin (64 MiB) matches through the mount" \
  || { echo "demo: MISMATCH"; exit 1; }
cat "$W/mnt"/train/* > /dev/null
head -c $((12 << 20)) /dev/urandom > "$W/result.bin"
cp "$W/result.bin" "$W/mnt/checkpoints/result.bin"
cmp "$W/result.bin" "$d/checkpoints/result.bin" && echo "demo: a 12 MiB result written through the mount is on the server"
sleep 1.5  # one more stats snapshot
echo
echo "Bytes by transport (from the mount's stats file):"
grep -E '^s3rdmafs_(data|upload)_bytes_total|^s3rdmafs_s3_requests_total\{op="(rdma_get|rdma_put|get|put|upload_part)"\}|^s3rdmafs_rdma_connected' \
  "$W/stats" | sed 's/^/  /'
echo "Server side: $(grep -c 'bytes by RDMA WRITE' "$W/server.log") RDMA GETs served by RDMA WRITE," \
  "$(grep -c 'bytes by RDMA READ' "$W/server.log") uploads pulled by RDMA READ"
