#!/usr/bin/env bash
# Listing benchmark: ListObjectsV2 pages of 1,000 at the start, middle and end
# of one flat prefix of N keys (default 1,000,000), for s3rdma-server as built
# and, with --baseline REV, as built from REV, side by side in one run. Flat
# time per page means paging does not rescan what came before.
# Run after scripts/build.sh release.
#   bench/list_bench.sh [--keys N] [--baseline REV]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
KEYS=1000000 BASELINE=
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) KEYS=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
W=${BENCH_DIR:-/var/tmp/s3rdmafs-lbench}
ROOT=$W/root-$KEYS
mkdir -p "$W"
if [ ! -f "$ROOT/.complete" ]; then
  echo "bench: creating $KEYS keys (once)" >&2
  rm -rf "$ROOT"; mkdir -p "$ROOT/bench/flat"
  /usr/bin/python3 - "$ROOT/bench/flat" "$KEYS" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.close(os.open(os.path.join(d, f"k{i:08d}"), os.O_CREAT | os.O_WRONLY, 0o644))
PY
  touch "$ROOT/.complete"
fi
BASE_BIN=
if [ -n "$BASELINE" ]; then
  B=$W/build-baseline-$BASELINE
  if [ ! -x "$B/server/s3rdma-server" ]; then
    echo "bench: building s3rdma-server at $BASELINE (once)" >&2
    BT=$W/baseline-src
    rm -rf "$BT"; git -C "$REPO" worktree prune; git -C "$REPO" worktree add -f --detach "$BT" "$BASELINE" >/dev/null
    cmake -S "$BT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    ninja -C "$B" s3rdma-server >/dev/null
    git -C "$REPO" worktree remove --force "$BT"
  fi
  BASE_BIN=$B/server/s3rdma-server
fi

measure() {  # $1 = server binary; prints "first middle last" page seconds
  rm -f "$W/port"
  "$1" --root "$ROOT" --port 0 --port-file "$W/port" --anonymous > "$W/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.05; done
  /usr/bin/python3 - "http://127.0.0.1:$(cat "$W/port")" "$KEYS" <<'PY'
import sys, time, urllib.request
ep, n = sys.argv[1], int(sys.argv[2])
def page(after):
    q = "list-type=2&prefix=flat/&max-keys=1000" + (f"&start-after=flat/k{after:08d}" if after >= 0 else "")
    t0 = time.time()
    body = urllib.request.urlopen(f"{ep}/bench?{q}").read()
    assert body.count(b"<Key>") == min(1000, n - after - 1), body[:300]
    return time.time() - t0
page(-1)  # the directory read and sorted once (both servers cache it)
print(" ".join(f"{min(page(a) for _ in range(3)):.3f}" for a in (-1, n // 2, n - 1001)))
PY
  kill $pid; wait $pid 2>/dev/null || true
}
OURS=$(measure "$REPO/build/server/s3rdma-server")
BASE="- - -"
[ -n "$BASE_BIN" ] && BASE=$(measure "$BASE_BIN")
echo
echo "ListObjectsV2, one page of 1,000 of $KEYS keys in one prefix, seconds (best of 3), one run"
printf '%-28s %14s %18s\n' "" "s3rdma-server" "${BASELINE:+s3rdma-server@}${BASELINE:-(no baseline)}"
read -r o1 o2 o3 <<< "$OURS"; read -r b1 b2 b3 <<< "$BASE"
printf '%-28s %14s %18s\n' "first page" "$o1" "$b1" "middle page (start-after)" "$o2" "$b2" "last page (start-after)" "$o3" "$b3"
