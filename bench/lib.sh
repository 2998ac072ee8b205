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
