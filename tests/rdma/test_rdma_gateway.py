"""The RDMA data path through a gateway with a real Ceph RGW behind it
(issue 14), on real verbs in the Soft-RoCE guest: the gateway streams RGW's
bodies into its staging and RDMA-WRITEs them into the mount's cache, and
RDMA-READs what the mount writes straight into its upstream PUTs. Without an
RDMA device this skips and says so; in the guest (S3RDMAFS_REQUIRE_RDMA=1) a
missing device is a failure."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import radosgw  # noqa: E402

BLOCK = 1 << 20
PART = 5 * BLOCK
RXE_IP = harness.RXE_IP
BUCKET = "rdmagw"


def logged_bytes(log, what):
    with open(log, errors="replace") as f:
        return sum(int(line.split(": ")[-1].split()[0]) for line in f if what in line)


class RdmaGatewayTest(harness.MountTestCase):
    @classmethod
    def setUpClass(cls):
        cls.rgw = None
        if not harness.have_rdma():
            return
        # Not on the shared TMPDIR (9p): the monitor's RocksDB wants a local filesystem.
        cls.rgw_dir = tempfile.mkdtemp(prefix="s3rdmafs-rdmagw-", dir="/tmp")
        cls.rgw = radosgw.Radosgw(cls.rgw_dir)
        try:
            cls.rgw.start(timeout=240)
        except Exception:
            cls.rgw.stop()
            raise
        import boto3
        cls.s3 = boto3.client("s3", endpoint_url=cls.rgw.endpoint, region_name="us-east-1",
                              aws_access_key_id=radosgw.ACCESS_KEY, aws_secret_access_key=radosgw.SECRET_KEY)
        cls.s3.create_bucket(Bucket=BUCKET)

    @classmethod
    def tearDownClass(cls):
        if cls.rgw:
            cls.rgw.stop()
            shutil.rmtree(cls.rgw_dir, ignore_errors=True)

    def setUp(self):
        harness.require_rdma(self)
        super().setUp()
        self.port = harness.free_port()
        self.gw = harness.Server(None, log=os.path.join(self.tmp, "gateway.log"),
                                 upstream=(self.rgw.endpoint, radosgw.ACCESS_KEY, radosgw.SECRET_KEY),
                                 extra=["--rdma-listen", f"{RXE_IP}:{self.port}"]).start()
        self._servers.append(self.gw)
        self.stats = os.path.join(self.tmp, "stats.prom")

    def gw_mount(self, *options):
        return self.mount(self.gw, source=f"{BUCKET}:/{self._testMethodName}", options=[
            f"rdma.endpoint={RXE_IP}:{self.port}", "rdma.required=true", "log.level=debug",
            f"log.stats_file={self.stats}", *options])

    def stats_show(self, want, what):
        try:
            harness.wait_for(lambda: want in open(self.stats).read(), 10, what)
        except AssertionError:
            self.fail(f"want {want}; stats:\n{open(self.stats).read()}")

    def test_rgw_objects_reach_the_cache_by_rdma_write(self):
        sizes = [1, 4095, BLOCK, 3 * BLOCK + 5]
        data = {s: os.urandom(s) for s in sizes}
        for s, d in data.items():
            self.s3.put_object(Bucket=BUCKET, Key=f"{self._testMethodName}/f{s}", Body=d)
        m = self.gw_mount("cache.size=64M")
        for s, d in data.items():
            with open(os.path.join(m.mountpoint, f"f{s}"), "rb") as f:
                self.assertEqual(f.read(), d, f"size {s}")
        self.stats_show('s3rdmafs_data_bytes_total{transport="rdma"} %d' % sum(sizes), "the RDMA bytes")
        self.assertIn('s3rdmafs_data_bytes_total{transport="http_fallback"} 0', open(self.stats).read())
        m.stop()
        self.assertEqual(logged_bytes(self.gw.log, "bytes by RDMA WRITE, from the upstream"), sum(sizes))

    def test_writes_reach_rgw_by_rdma_read(self):
        sizes = [4096, BLOCK, PART + 1, 2 * PART + 3]  # single PUTs and multipart uploads
        data = {s: os.urandom(s) for s in sizes}
        m = self.gw_mount("cache.size=32M", f"write.part_size={PART}", f"write.buffer_memory={4 * PART}",
                          f"write.staging_dir={os.path.join(self.tmp, 'staging')}")
        for s, d in data.items():
            with open(os.path.join(m.mountpoint, f"w{s}"), "wb") as f:
                f.write(d)
        for s, d in data.items():
            got = self.s3.get_object(Bucket=BUCKET, Key=f"{self._testMethodName}/w{s}")["Body"].read()
            self.assertEqual(got, d, f"size {s}")
        bodies = []
        for s in sizes:
            bodies += [min(PART, s - o) for o in range(0, s, PART)] if s > PART else [s]
        by_rdma = sum(b for b in bodies if b >= 4096)  # under 4 KiB a body is cheaper than a token
        self.stats_show('s3rdmafs_upload_bytes_total{transport="rdma"} %d' % by_rdma, "the RDMA uploads")
        self.assertIn('s3rdmafs_upload_bytes_total{transport="http_fallback"} %d' % (sum(sizes) - by_rdma),
                      open(self.stats).read())
        m.stop()
        self.assertEqual(logged_bytes(self.gw.log, "bytes by RDMA READ, to the upstream"), by_rdma)
        with open(self.gw.log, errors="replace") as f:
            unchecked = [line for line in f if "bytes by RDMA READ" in line and "checked against" not in line]
        self.assertEqual(unchecked, [], "every RDMA upload's CRC-32C is checked before it goes up")

    def test_two_gateways_each_serve_their_share_by_rdma(self):
        # Each gateway has its own RDMA listener; the mount holds one RC
        # connection per gateway and sends a block's request (and its token)
        # to the gateway its S3 request goes to.
        port2 = harness.free_port()
        gw2 = harness.Server(None, log=os.path.join(self.tmp, "gateway2.log"),
                             upstream=(self.rgw.endpoint, radosgw.ACCESS_KEY, radosgw.SECRET_KEY),
                             extra=["--rdma-listen", f"{RXE_IP}:{port2}"]).start()
        self._servers.append(gw2)
        size = 16 * BLOCK + 7
        data = os.urandom(size)
        self.s3.put_object(Bucket=BUCKET, Key=f"{self._testMethodName}/big", Body=data)
        m = self.mount(f"{self.gw.endpoint};{gw2.endpoint}", source=f"{BUCKET}:/{self._testMethodName}",
                       options=[f"rdma.endpoint={RXE_IP}:{self.port};{RXE_IP}:{port2}", "rdma.required=true",
                                "log.level=debug", f"log.stats_file={self.stats}", "cache.size=64M",
                                f"write.part_size={PART}", f"write.buffer_memory={4 * PART}",
                                f"write.staging_dir={os.path.join(self.tmp, 'staging')}"])
        with open(os.path.join(m.mountpoint, "big"), "rb") as f:
            self.assertEqual(f.read(), data)
        written = os.urandom(2 * PART + 5000)  # 3 parts, each >= 4 KiB: all by RDMA
        with open(os.path.join(m.mountpoint, "out"), "wb") as f:
            f.write(written)
        got = self.s3.get_object(Bucket=BUCKET, Key=f"{self._testMethodName}/out")["Body"].read()
        self.assertEqual(got, written)
        self.stats_show('s3rdmafs_data_bytes_total{transport="rdma"} %d' % size, "the RDMA bytes")
        self.stats_show("s3rdmafs_rdma_connected 2", "two RDMA connections")
        text = open(self.stats).read()
        self.assertIn('s3rdmafs_data_bytes_total{transport="http_fallback"} 0', text)
        self.assertIn('s3rdmafs_upload_bytes_total{transport="http_fallback"} 0', text)
        m.stop()
        read1 = logged_bytes(self.gw.log, "bytes by RDMA WRITE, from the upstream")
        read2 = logged_bytes(gw2.log, "bytes by RDMA WRITE, from the upstream")
        self.assertEqual(read1 + read2, size)
        self.assertGreater(read1, 0, "gateway 1 wrote no blocks by RDMA")
        self.assertGreater(read2, 0, "gateway 2 wrote no blocks by RDMA")
        sent = logged_bytes(self.gw.log, "bytes by RDMA READ, to the upstream") + \
            logged_bytes(gw2.log, "bytes by RDMA READ, to the upstream")
        self.assertEqual(sent, len(written))


if __name__ == "__main__":
    unittest.main()
