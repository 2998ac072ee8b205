"""The RDMA data path end to end on real verbs (Soft-RoCE in the guest): the
reference server RDMA-WRITEs object bytes straight into the mount's cache
arena. Without an RDMA device this skips and says so; in the guest
(S3RDMAFS_REQUIRE_RDMA=1) a missing device is a failure."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

BLOCK = 1 << 20
RXE_IP = os.environ.get("RXE_IP")


def have_rdma():
    return os.path.isdir("/sys/class/infiniband") and bool(os.listdir("/sys/class/infiniband"))


class RdmaMountTest(harness.MountTestCase):
    def setUp(self):
        if not have_rdma() or not RXE_IP:
            if os.environ.get("S3RDMAFS_REQUIRE_RDMA"):
                self.fail("S3RDMAFS_REQUIRE_RDMA is set but there is no RDMA device / RXE_IP")
            self.skipTest("no RDMA device on this host: runs in the Soft-RoCE guest (tests/rdma/run-in-guest.sh)")
        super().setUp()

    def test_reads_move_by_rdma_write(self):
        sizes = [0, 1, 4095, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5]
        data = {s: os.urandom(s) for s in sizes}
        for s, d in data.items():
            self.write(f"r/f{s}", d)
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        m = self.mount(srv, options=[f"rdma.endpoint={RXE_IP}:{port}", "rdma.required=true", "cache.size=64M",
                                     "log.level=debug"])
        for s, d in data.items():
            with open(os.path.join(m.mountpoint, f"r/f{s}"), "rb") as f:
                self.assertEqual(f.read(), d, f"size {s}")
        m.stop()
        with open(srv.log, errors="replace") as f:
            log = f.read()
        moved = sum(int(line.split(": ")[-1].split()[0]) for line in log.splitlines() if "RDMA GET" in line and "bytes by RDMA WRITE" in line)
        self.assertEqual(moved, sum(sizes), "every byte moved by RDMA WRITE")
        self.assertIn("transport totals: %d bytes by RDMA, 0 by HTTP" % sum(sizes), m.log_text())

    def test_no_rdma_listener_falls_back_loudly_or_fails_when_required(self):
        self.write("x.bin", b"x" * 5000)
        srv = self.server()
        port = harness.free_port()
        m = self.mount(srv, options=[f"rdma.endpoint={RXE_IP}:{port}"])
        with open(os.path.join(m.mountpoint, "x.bin"), "rb") as f:
            self.assertEqual(f.read(), b"x" * 5000)
        self.assertIn("RDMA UNAVAILABLE", m.log_text())
        req = harness.Mount(os.path.join(self.tmp, "req"), os.path.join(self.tmp, "req.log"))
        self._mounts.append(req)
        r = req.start("bucket", srv.endpoint, options=[f"rdma.endpoint={RXE_IP}:{port}", "rdma.required=true"],
                      check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("RDMA is required", r.stderr)


if __name__ == "__main__":
    unittest.main()
