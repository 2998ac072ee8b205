# Shared by the bench scripts (sourced, not run).

# baseline_bin WORKDIR REV: s3rdmafs built from REV (a git worktree, built
# once into WORKDIR/build-baseline-REV); prints the binary's path.
baseline_bin() {
  local w=$1 rev=$2 repo bt
  repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
  bt=$w/baseline-src
  if [ ! -x "$w/build-baseline-$rev/src/s3rdmafs" ]; then
    echo "bench: building s3rdmafs at $rev (once)" >&2
    rm -rf "$bt"; git -C "$repo" worktree prune; git -C "$repo" worktree add -f --detach "$bt" "$rev" >/dev/null
    cmake -S "$bt" -B "$w/build-baseline-$rev" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    ninja -C "$w/build-baseline-$rev" s3rdmafs >/dev/null
    git -C "$repo" worktree remove --force "$bt"
  fi
  echo "$w/build-baseline-$rev/src/s3rdmafs"
}

# start_server WORKDIR ROOT: s3rdma-server (this build) over ROOT on a free
# loopback port, keys $AK/$SK; sets SERVER (its pid) and EP (its URL).
start_server() {
  local w=$1 root=$2 repo
  repo=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
  rm -f "$w/port"
  "$repo/build/server/s3rdma-server" --root "$root" --port 0 --port-file "$w/port" --access-key "$AK" \
    --secret-key "$SK" > "$w/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do [ -s "$w/port" ] && break; sleep 0.05; done
  EP=http://127.0.0.1:$(cat "$w/port")
}
