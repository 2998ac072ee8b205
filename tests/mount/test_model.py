"""Model-based test: random sequences of create / write / overwrite / append /
truncate / rename / unlink / mkdir / rmdir / chmod against a real mount and
against an in-memory model of the tree (paths -> bytes and modes). After
every few operations, and after a remount, the mount must equal the model
byte for byte. Seeds are printed; rerun one with S3RDMAFS_MODEL_SEED=N.

The faulted variant runs through the fault proxy: before some writes, the
server starts refusing (503), resetting or losing the replies of writes.
A write whose close fails may have saved its new bytes or nothing: the
object must then hold exactly the old bytes or exactly the new ones, never a
mix, and never become empty by accident."""
import errno
import os
import random
import stat
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import fault_proxy  # noqa: E402
import harness  # noqa: E402

MIB = 1 << 20
PART = 5 * MIB
OPS = int(os.environ.get("S3RDMAFS_MODEL_OPS", "120"))


class Model:
    """The expected tree: files {path: bytearray}, modes {path: mode}, dirs {path}."""

    def __init__(self):
        self.files, self.modes, self.dirs = {}, {}, {""}

    def parent_ok(self, path):
        return os.path.dirname(path) in self.dirs

    def children(self, d):
        prefix = d + "/" if d else ""
        return [p for p in list(self.files) + list(self.dirs)
                if p != d and p.startswith(prefix) and "/" not in p[len(prefix):]]


class ModelTest(harness.MountTestCase):
    def run_seed(self, seed, faults=False):
        print(f"model seed {seed} ({OPS} ops{', faults' if faults else ''})", file=sys.stderr, flush=True)
        rng = random.Random(seed)
        srv = self.server()
        endpoint = srv.endpoint
        proxy = None
        if faults:
            proxy = fault_proxy.FaultProxy(srv.port)
            self.addCleanup(proxy.stop)
            endpoint = proxy.endpoint
        opts = ["s3.max_retries=1", "cache.size=64M", f"write.part_size={PART}", f"write.buffer_memory={6 * PART}",
                f"write.staging_dir={os.path.join(self.tmp, 'staging')}", "metadata.attr_ttl=2s",
                "metadata.entry_ttl=2s", "metadata.negative_ttl=2s"]
        bucket = f"model{seed}"
        os.makedirs(os.path.join(self.root, bucket))
        m = self.mount(endpoint, source=bucket, name=f"m{seed}", options=opts)
        faults_seen = {"refused": 0, "old kept": 0, "new saved": 0}

        def stored(p):
            try:
                with open(os.path.join(self.root, bucket, p), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None
        model = Model()
        names = ["a", "b", "c", "d", "e"]

        def rand_path(want_dir=None):
            base = rng.choice(sorted(model.dirs))
            return os.path.join(base, rng.choice(names)) if base else rng.choice(names)

        def blob():
            size = rng.choice([0, 1, 100, 4096, 70000, MIB + 3, PART + 17])
            return bytearray(rng.randbytes(size))

        def mp(p):
            return os.path.join(m.mountpoint, p)

        log = []
        for step in range(OPS):
            op = rng.choice(["create", "create", "overwrite", "append", "truncate", "rename",
                             "unlink", "mkdir", "rmdir", "chmod"])
            p = rand_path()
            log.append(f"{step}: {op} {p}")
            fault = None
            applies = p not in model.dirs if op == "create" else p in model.files
            if faults and op in ("create", "overwrite", "append", "truncate") and applies and \
                    rng.random() < 0.3:
                kind = rng.choice(["error", "reset", "lost"])
                if kind == "lost":
                    proxy.add("lost", method="PUT")
                else:  # every write refused: objects, parts, Complete
                    proxy.add(kind, method="PUT", times=None, status=503)
                    proxy.add(kind, method="POST", target="uploadId=", times=None, status=503)
                fault = kind
                log[-1] += f" [fault: {kind}]"
                before = None if p not in model.files else bytes(model.files[p])
            raised = False
            try:
                if op == "create":
                    if p in model.dirs:
                        continue
                    data = blob()
                    with open(mp(p), "wb") as f:
                        f.write(data)
                    model.files[p] = data
                    model.modes.setdefault(p, 0o644)
                elif op == "overwrite" and p in model.files:
                    cur = model.files[p]
                    off = rng.randrange(0, len(cur) + 10)
                    data = rng.randbytes(rng.choice([1, 10, 5000]))
                    with open(mp(p), "r+b") as f:
                        f.seek(off)
                        f.write(data)
                    if off > len(cur):
                        cur.extend(b"\0" * (off - len(cur)))
                    cur[off:off + len(data)] = data
                elif op == "append" and p in model.files:
                    data = rng.randbytes(rng.choice([1, 1000, 100000]))
                    with open(mp(p), "ab") as f:
                        f.write(data)
                    model.files[p].extend(data)
                elif op == "truncate" and p in model.files:
                    n = rng.randrange(0, len(model.files[p]) + 5000)
                    os.truncate(mp(p), n)
                    cur = model.files[p]
                    if n < len(cur):
                        del cur[n:]
                    else:
                        cur.extend(b"\0" * (n - len(cur)))
                elif op == "rename" and (p in model.files or (p in model.dirs and p)):
                    q = rand_path()
                    if q == p or q.startswith(p + "/") or q in model.dirs or not model.parent_ok(q):
                        continue
                    if p in model.dirs and q in model.files:
                        continue
                    os.rename(mp(p), mp(q))
                    if p in model.files:
                        model.files[q] = model.files.pop(p)
                        model.modes[q] = model.modes.pop(p)
                    else:
                        for table in (model.files, model.modes):
                            for k in [k for k in table if k.startswith(p + "/")]:
                                table[q + k[len(p):]] = table.pop(k)
                        moved = {d for d in model.dirs if d == p or d.startswith(p + "/")}
                        model.dirs = (model.dirs - moved) | {q + d[len(p):] for d in moved}
                elif op == "unlink" and p in model.files:
                    os.unlink(mp(p))
                    del model.files[p], model.modes[p]
                elif op == "mkdir" and p not in model.files and p not in model.dirs:
                    os.mkdir(mp(p))
                    model.dirs.add(p)
                elif op == "rmdir" and p in model.dirs:
                    if model.children(p):
                        with self.assertRaises(OSError) as e:
                            os.rmdir(mp(p))
                        self.assertEqual(e.exception.errno, errno.ENOTEMPTY)
                    else:
                        os.rmdir(mp(p))
                        model.dirs.discard(p)
                elif op == "chmod" and p in model.files:
                    mode = rng.choice([0o600, 0o640, 0o755, 0o444])
                    os.chmod(mp(p), mode)
                    model.modes[p] = mode
            except OSError:
                if fault is None:
                    print("\n".join(log[-15:]), file=sys.stderr)
                    raise
                faults_seen["refused"] += 1
                raised = True
            except Exception:
                print("\n".join(log[-15:]), file=sys.stderr)
                raise
            if fault is not None:
                proxy.clear()
                time.sleep(0.2)  # the kernel's RELEASE after the close: it must not save now
                now = stored(p)
                new = bytes(model.files[p]) if p in model.files else None
                want = before if raised else new  # a failed close changes nothing
                if now != want:
                    print("\n".join(log[-15:]), file=sys.stderr)
                    self.fail(f"seed {seed} step {step}: after a {fault} fault whose op "
                              f"{'failed' if raised else 'succeeded'}, {p} holds "
                              f"{None if now is None else len(now)} bytes, want "
                              f"{None if want is None else len(want)}")
                faults_seen["old kept" if raised else "new saved"] += 1
                if now is None:
                    model.files.pop(p, None)
                    model.modes.pop(p, None)
                else:
                    model.files[p] = bytearray(now)
                    model.modes.setdefault(p, 0o644)
            if step % 20 == 19:
                self.check(m.mountpoint, model, f"seed {seed} step {step}", log)
        self.check(m.mountpoint, model, f"seed {seed} end", log)
        m.stop()
        m2 = self.mount(srv, source=bucket, name=f"again{seed}", options=opts)
        self.check(m2.mountpoint, model, f"seed {seed} after remount", log)
        if faults:
            print(f"faults: {faults_seen}", file=sys.stderr)
            self.assertGreater(faults_seen["refused"], 0, "some faults reached a close")

    def check(self, root, model, where, log):
        seen_files, seen_dirs = {}, {""}
        for d, dirs, files in os.walk(root):
            rel = os.path.relpath(d, root)
            rel = "" if rel == "." else rel
            for x in dirs:
                seen_dirs.add(os.path.join(rel, x) if rel else x)
            for x in files:
                p = os.path.join(rel, x) if rel else x
                with open(os.path.join(root, p), "rb") as f:
                    seen_files[p] = f.read()
                st = os.stat(os.path.join(root, p))
                if model.modes.get(p) is not None and stat.S_IMODE(st.st_mode) != model.modes[p]:
                    self.fail(f"{where}: mode of {p} is {oct(st.st_mode)}, model {oct(model.modes[p])}")
        # Every directory here was made with mkdir (a marker object), so the
        # trees must match exactly.
        missing_dirs = {d for d in model.dirs if d not in seen_dirs}
        extra_dirs = seen_dirs - model.dirs
        extra_files = set(seen_files) - set(model.files)
        missing_files = set(model.files) - set(seen_files)
        wrong = [p for p in model.files if p in seen_files and seen_files[p] != bytes(model.files[p])]
        if missing_dirs or extra_dirs or extra_files or missing_files or wrong:
            print("\n".join(log[-20:]), file=sys.stderr)
            for p in wrong:  # where they part: a lost tail, a stale block, a mix?
                got, want = seen_files[p], bytes(model.files[p])
                at = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                          min(len(got), len(want)))
                print(f"{p}: {len(got)} bytes seen, {len(want)} in the model, first difference at {at}",
                      file=sys.stderr)
            self.fail(f"{where}: missing dirs {sorted(missing_dirs)}, extra dirs {sorted(extra_dirs)}, "
                      f"extra files {sorted(extra_files)}, "
                      f"missing files {sorted(missing_files)}, wrong bytes {sorted(wrong)}")

    def test_random_sequences(self):
        seeds = [int(os.environ["S3RDMAFS_MODEL_SEED"])] if "S3RDMAFS_MODEL_SEED" in os.environ \
            else [random.randrange(1 << 30) for _ in range(2)] + [12345]
        for seed in seeds:
            with self.subTest(seed=seed):
                self.run_seed(seed)

    def test_random_sequences_with_faults(self):
        seeds = [int(os.environ["S3RDMAFS_MODEL_SEED"])] if "S3RDMAFS_MODEL_SEED" in os.environ \
            else [random.randrange(1 << 30), 777]
        for seed in seeds:
            with self.subTest(seed=seed):
                self.run_seed(seed, faults=True)


if __name__ == "__main__":
    unittest.main()
