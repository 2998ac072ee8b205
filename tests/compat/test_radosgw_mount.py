"""The mount against Ceph RGW (Debian's ceph 16 packages, tests/lib/radosgw.py):
what boto3 stored reads back through the mount, and what the mount writes
(small files, a multipart file, overwrites, renames, modes) reads back
through boto3 and through a second mount."""
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402
import radosgw  # noqa: E402

BUCKET = "rgwcompat"


def sha(data):
    return hashlib.sha256(data).hexdigest()


class RadosgwMountTest(harness.MountTestCase):
    @classmethod
    def setUpClass(cls):
        cls.rgw_dir = tempfile.mkdtemp(prefix="s3rdmafs-rgw-")
        cls.rgw = radosgw.Radosgw(cls.rgw_dir)
        try:
            cls.rgw.start()
        except Exception:
            cls.rgw.stop()
            raise
        import boto3
        cls.s3 = boto3.client("s3", endpoint_url=cls.rgw.endpoint, region_name="us-east-1",
                              aws_access_key_id=radosgw.ACCESS_KEY,
                              aws_secret_access_key=radosgw.SECRET_KEY)
        cls.s3.create_bucket(Bucket=BUCKET)

    @classmethod
    def tearDownClass(cls):
        cls.rgw.stop()
        if not os.environ.get("S3RDMAFS_KEEP"):
            shutil.rmtree(cls.rgw_dir, ignore_errors=True)

    def rgw_mount(self, name="mnt", options=()):
        """A mount of this test's prefix, straight on RGW (a subclass may put
        gateways between)."""
        return self.mount(self.rgw.endpoint, source=f"{BUCKET}:/{self._testMethodName}", name=name,
                          access_key=radosgw.ACCESS_KEY, secret_key=radosgw.SECRET_KEY,
                          options=list(options))

    def key(self, rel):
        return f"{self._testMethodName}/{rel}"

    def test_reads_what_boto3_wrote(self):
        files = {f"sizes/f{s}": os.urandom(s) for s in (0, 1, (1 << 20) - 1, (3 << 20) + 7)}
        files.update({f"many/k{i:04d}": b"%d" % i for i in range(1100)})  # two LIST pages
        files["deep/a/b/c"] = b"deep"
        for k, v in files.items():
            self.s3.put_object(Bucket=BUCKET, Key=self.key(k), Body=v)
        m = self.rgw_mount()
        self.assertEqual(sorted(os.listdir(m.mountpoint)), ["deep", "many", "sizes"])
        self.assertEqual(len(os.listdir(os.path.join(m.mountpoint, "many"))), 1100)
        for k, v in files.items():
            if k.startswith("many/") and not k.endswith("7"):
                continue
            with open(os.path.join(m.mountpoint, k), "rb") as f:
                self.assertEqual(sha(f.read()), sha(v), k)
            self.assertEqual(os.stat(os.path.join(m.mountpoint, k)).st_size, len(v), k)

    def test_writes_read_back_through_boto3_and_a_second_mount(self):
        m = self.rgw_mount()
        big = os.urandom((20 << 20) + 12345)  # several parts: multipart upload to RGW
        small = {f"d/s{i}": os.urandom(100 + i) for i in range(20)}
        os.makedirs(os.path.join(m.mountpoint, "d"))
        for k, v in small.items():
            with open(os.path.join(m.mountpoint, k), "wb") as f:
                f.write(v)
        with open(os.path.join(m.mountpoint, "big"), "wb") as f:
            f.write(big)
        # A header patch behind the stream, then an overwrite and a rename.
        with open(os.path.join(m.mountpoint, "big"), "r+b") as f:
            f.write(b"HEADER")
        big = b"HEADER" + big[6:]
        with open(os.path.join(m.mountpoint, "d/s0"), "wb") as f:
            f.write(b"second version")
        small["d/s0"] = b"second version"
        os.rename(os.path.join(m.mountpoint, "d/s1"), os.path.join(m.mountpoint, "d/moved"))
        small["d/moved"] = small.pop("d/s1")
        os.chmod(os.path.join(m.mountpoint, "d/s2"), 0o600)
        os.symlink("s3", os.path.join(m.mountpoint, "d/link"))

        got = self.s3.get_object(Bucket=BUCKET, Key=self.key("big"))["Body"].read()
        self.assertEqual(sha(got), sha(big))
        for k, v in small.items():
            self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key=self.key(k))["Body"].read(), v, k)
        with self.assertRaises(self.s3.exceptions.NoSuchKey):
            self.s3.get_object(Bucket=BUCKET, Key=self.key("d/s1"))

        m2 = self.rgw_mount(name="mnt2")
        with open(os.path.join(m2.mountpoint, "big"), "rb") as f:
            self.assertEqual(sha(f.read()), sha(big))
        for k, v in small.items():
            with open(os.path.join(m2.mountpoint, k), "rb") as f:
                self.assertEqual(f.read(), v, k)
        self.assertEqual(os.stat(os.path.join(m2.mountpoint, "d/s2")).st_mode & 0o777, 0o600)
        self.assertEqual(os.readlink(os.path.join(m2.mountpoint, "d/link")), "s3")
        self.assertNotIn("s1", os.listdir(os.path.join(m2.mountpoint, "d")))

    def test_ls_l_of_what_mounts_wrote_comes_from_the_directory_record(self):
        """Two mounts write one directory; their record writes (If-None-Match,
        If-Match on RGW) merge, and a third mount's ls -l sends no HEAD."""
        m = self.rgw_mount()
        d = os.path.join(m.mountpoint, "d")
        os.mkdir(d)
        want = {}
        for i in range(30):
            with open(os.path.join(d, f"f{i:02d}"), "wb") as f:
                f.write(b"x" * i)
            os.chmod(os.path.join(d, f"f{i:02d}"), 0o600 | i % 8)
            want[f"f{i:02d}"] = stat.S_IFREG | 0o600 | i % 8
        os.symlink("f01", os.path.join(d, "link"))
        m2 = self.rgw_mount(name="mnt2")
        with open(os.path.join(m2.mountpoint, "d", "other"), "wb") as f:
            f.write(b"o")
        os.chmod(os.path.join(m2.mountpoint, "d", "other"), 0o640)
        want["other"] = stat.S_IFREG | 0o640
        m.stop()
        m2.stop()
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=self.key(".s3rdmafs-preserved/"))
        self.assertEqual([o["Key"] for o in listed["Contents"]],
                         [self.key(".s3rdmafs-preserved/records/d/@")])
        sock = os.path.join(self.tmp, "metrics.sock")
        m3 = self.rgw_mount(name="mnt3", options=[f"metrics.listen=unix:{sock}"])
        self.assertTrue(os.path.isdir(os.path.join(m3.mountpoint, "d")))
        before = harness.metrics("unix:" + sock)
        out = subprocess.run(["ls", "-l", os.path.join(m3.mountpoint, "d")], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        after = harness.metrics("unix:" + sock)
        delta = lambda op: after[f's3rdmafs_s3_requests_total{{op="{op}"}}'] - \
            before[f's3rdmafs_s3_requests_total{{op="{op}"}}']  # noqa: E731
        self.assertEqual(delta("head"), 0, out.stdout)
        self.assertEqual(delta("get"), 1, "the record")
        self.assertIn("link -> f01", out.stdout)
        for name, mode in want.items():
            self.assertEqual(os.lstat(os.path.join(m3.mountpoint, "d", name)).st_mode, mode, name)

    def test_fsynced_overwrite_reaches_rgw(self):
        """An overwrite saved by fsync (sqlite's way) carries If-Match, which
        RGW 16 compares with the bare ETag: it must reach RGW."""
        self.s3.put_object(Bucket=BUCKET, Key=self.key("f"), Body=b"OLD")
        m = self.rgw_mount()
        path = os.path.join(m.mountpoint, "f")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"OLD")
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"NEW" * 1000)
        # sqlite's way of saving: a sync that must reach RGW before close returns
        os.fsync(fd)
        os.close(fd)
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key=self.key("f"))["Body"].read(), b"NEW" * 1000)


if __name__ == "__main__":
    unittest.main()
