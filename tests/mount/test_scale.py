"""A 100,000-key prefix lists in one streaming pass with bounded daemon memory."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

N = 100_000


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ScaleTest(harness.MountTestCase):
    def test_hundred_thousand_keys(self):
        d = os.path.join(self.root, "bucket", "flat")
        os.makedirs(d)
        for i in range(N):
            open(os.path.join(d, f"key-{i:06d}"), "wb").close()
        with open(os.path.join(d, "key-050000"), "wb") as f:
            f.write(b"middle")
        srv = self.server()
        # The fast mode for datasets: attributes from LIST alone (the default
        # also reads x-amz-meta-* with a HEAD per file; see s3rdmafs-semantics(7)).
        m = self.mount(srv, options=["cache.size=64M", "metadata.object_attributes=false"])
        t0 = time.time()
        out = subprocess.run(["ls", "-l", os.path.join(m.mountpoint, "flat")], capture_output=True, text=True, timeout=600)
        elapsed = time.time() - t0
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(len(lines), N + 1)  # plus "total"
        self.assertIn(" 6 ", [l for l in lines if l.endswith("key-050000")][0])
        self.assertEqual(srv.requests("HEAD"), 1, "one lookup of 'flat', then attributes from LIST only")
        rss = rss_kib(m.daemon_pid())
        print(f"\nls -l of {N} keys: {elapsed:.1f} s, daemon RSS {rss / 1024:.0f} MiB", file=sys.stderr)
        self.assertLess(rss, 256 * 1024, "daemon memory stays bounded")

    def test_inodes_are_released_after_a_walk_and_an_open_file_keeps_its_own(self):
        dirs, per_dir = 20, 150
        for i in range(dirs):
            d = os.path.join(self.root, "bucket", f"d{i:02d}")
            os.makedirs(d)
            for j in range(per_dir):
                with open(os.path.join(d, f"f{j:03d}"), "wb") as f:
                    f.write(b"%d" % j)
        srv = self.server()
        where = f"127.0.0.1:{harness.free_port()}"
        m = self.mount(srv, options=["cache.size=16M", f"metrics.listen={where}", "metadata.idle_forget=1s",
                                     "metadata.entry_ttl=1s", "metadata.attr_ttl=1s"])
        start = harness.metrics(where)["s3rdmafs_inodes"]
        keep = open(os.path.join(m.mountpoint, "d03", "f007"), "rb")
        seen = 0
        for d, _, files in os.walk(m.mountpoint):
            for x in files:
                os.stat(os.path.join(d, x))
                seen += 1
        self.assertEqual(seen, dirs * per_dir)
        peak = harness.metrics(where)["s3rdmafs_inodes"]
        self.assertGreaterEqual(peak, dirs * per_dir)
        # The sweeper asks the kernel to forget what is idle; its FORGETs
        # drop the inodes. What is open stays.
        harness.wait_for(lambda: harness.metrics(where)["s3rdmafs_inodes"] < start + 10, 30, "inodes released")
        print(f"\ninodes: {start:.0f} before, {peak:.0f} after a walk of {seen} files, "
              f"{harness.metrics(where)['s3rdmafs_inodes']:.0f} once idle", file=sys.stderr)
        self.assertEqual(keep.read(), b"7")
        keep.close()
        with open(os.path.join(m.mountpoint, "d19", "f149"), "rb") as f:
            self.assertEqual(f.read(), b"149", "a released name is looked up again")
        self.assertIn("f000", os.listdir(os.path.join(m.mountpoint, "d00")))

    def test_a_bound_on_inodes_holds_during_a_walk(self):
        d = os.path.join(self.root, "bucket", "many")
        os.makedirs(d)
        for j in range(3000):
            open(os.path.join(d, f"k{j:04d}"), "wb").close()
        srv = self.server()
        where = f"127.0.0.1:{harness.free_port()}"
        m = self.mount(srv, options=["cache.size=16M", f"metrics.listen={where}", "metadata.max_inodes=500"])
        most = 0
        for i, name in enumerate(sorted(os.listdir(os.path.join(m.mountpoint, "many")))):
            os.stat(os.path.join(m.mountpoint, "many", name))
            if i % 250 == 0:
                most = max(most, harness.metrics(where)["s3rdmafs_inodes"])
        harness.wait_for(lambda: harness.metrics(where)["s3rdmafs_inodes"] <= 500, 20, "the bound")
        print(f"\nmost inodes seen during a walk of 3000 with max_inodes=500: {most:.0f}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
