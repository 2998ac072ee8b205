"""Model-based test: random sequences of create / write / overwrite / append /
truncate / rename / unlink / mkdir / rmdir / chmod against a real mount and
against an in-memory model of the tree (paths -> bytes and modes). After
every few operations, and after a remount, the mount must equal the model
byte for byte. Seeds are printed; rerun one with S3RDMAFS_MODEL_SEED=N."""
import errno
import os
import random
import stat
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
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
    def run_seed(self, seed):
        print(f"model seed {seed} ({OPS} ops)", file=sys.stderr, flush=True)
        rng = random.Random(seed)
        srv = self.server()
        opts = ["cache.size=64M", f"write.part_size={PART}", f"write.buffer_memory={6 * PART}",
                f"write.staging_dir={os.path.join(self.tmp, 'staging')}", "metadata.attr_ttl=2s",
                "metadata.entry_ttl=2s", "metadata.negative_ttl=2s"]
        bucket = f"model{seed}"
        os.makedirs(os.path.join(self.root, bucket))
        m = self.mount(srv, source=bucket, name=f"m{seed}", options=opts)
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
            except Exception:
                print("\n".join(log[-15:]), file=sys.stderr)
                raise
            if step % 20 == 19:
                self.check(m.mountpoint, model, f"seed {seed} step {step}", log)
        self.check(m.mountpoint, model, f"seed {seed} end", log)
        m.stop()
        m2 = self.mount(srv, source=bucket, name=f"again{seed}", options=opts)
        self.check(m2.mountpoint, model, f"seed {seed} after remount", log)

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
            self.fail(f"{where}: missing dirs {sorted(missing_dirs)}, extra dirs {sorted(extra_dirs)}, "
                      f"extra files {sorted(extra_files)}, "
                      f"missing files {sorted(missing_files)}, wrong bytes {sorted(wrong)}")

    def test_random_sequences(self):
        seeds = [int(os.environ["S3RDMAFS_MODEL_SEED"])] if "S3RDMAFS_MODEL_SEED" in os.environ \
            else [random.randrange(1 << 30) for _ in range(2)] + [12345]
        for seed in seeds:
            with self.subTest(seed=seed):
                self.run_seed(seed)


if __name__ == "__main__":
    unittest.main()
