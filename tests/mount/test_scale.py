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


if __name__ == "__main__":
    unittest.main()
