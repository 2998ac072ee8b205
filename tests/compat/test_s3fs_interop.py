"""Interop with s3fs (the real s3fs-fuse, on the same reference server): what
one tool writes - bytes, mode, owner, mtime, symlinks, directories - the
other reads back the same. Both directions."""
import os
import shutil
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

MTIME_NS = 1600000000 * 10**9  # s3fs keeps whole seconds


@unittest.skipUnless(shutil.which("s3fs"), "s3fs is not installed (scripts/install-deps.sh --test)")
class S3fsInteropTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server()
        self.pw = os.path.join(self.tmp, "s3fs.pw")
        with open(self.pw, "w") as f:
            f.write(f"{harness.ACCESS_KEY}:{harness.SECRET_KEY}\n")
        os.chmod(self.pw, 0o600)
        self.s3fs_dir = None

    def tearDown(self):
        if self.s3fs_dir:
            self.s3fs_stop()
        super().tearDown()

    def s3fs_start(self):
        self.s3fs_dir = os.path.join(self.tmp, "s3fs")
        os.makedirs(self.s3fs_dir, exist_ok=True)
        subprocess.run(["s3fs", "bucket", self.s3fs_dir, "-o",
                        f"passwd_file={self.pw},url={self.srv.endpoint},use_path_request_style,"
                        "stat_cache_expire=1,dbglevel=warn"], check=True)
        harness.wait_for(lambda: harness.is_mounted(self.s3fs_dir), what="s3fs mount")
        return self.s3fs_dir

    def s3fs_stop(self):
        subprocess.run(["fusermount3", "-u", self.s3fs_dir], capture_output=True)
        subprocess.run(["fusermount", "-u", self.s3fs_dir], capture_output=True)
        harness.wait_for(lambda: not harness.is_mounted(self.s3fs_dir), what="s3fs unmount")
        self.s3fs_dir = None

    def write_tree(self, root):
        os.mkdir(os.path.join(root, "dir"), 0o700)
        f = os.path.join(root, "dir", "file")
        with open(f, "wb") as out:
            out.write(b"written by one, read by the other\n" * 1000)
        os.chmod(f, 0o640)
        os.chown(f, 1234, 5678)
        os.utime(f, ns=(MTIME_NS, MTIME_NS))
        os.symlink("dir/file", os.path.join(root, "link"))

    def check_tree(self, root):
        d = os.stat(os.path.join(root, "dir"))
        self.assertTrue(stat.S_ISDIR(d.st_mode))
        self.assertEqual(stat.S_IMODE(d.st_mode), 0o700)
        f = os.path.join(root, "dir", "file")
        st = os.stat(f)
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o640, 1234, 5678))
        self.assertEqual(st.st_mtime_ns, MTIME_NS)
        with open(f, "rb") as fh:
            self.assertEqual(fh.read(), b"written by one, read by the other\n" * 1000)
        self.assertTrue(stat.S_ISLNK(os.lstat(os.path.join(root, "link")).st_mode))
        self.assertEqual(os.readlink(os.path.join(root, "link")), "dir/file")
        listed = {e.name: e for e in os.scandir(os.path.join(root, "dir"))}
        self.assertEqual(stat.S_IMODE(listed["file"].stat().st_mode), 0o640)

    def test_s3fs_writes_we_read(self):
        self.write_tree(self.s3fs_start())
        self.s3fs_stop()
        m = self.mount(self.srv)
        self.check_tree(m.mountpoint)

    def test_s3fs_writes_we_list_first(self):
        # ls -l before any lookup: no record vouches for s3fs's files, so the
        # listing's sample HEADs find its x-amz-meta-* and HEAD the rest.
        self.write_tree(self.s3fs_start())
        self.s3fs_stop()
        m = self.mount(self.srv)
        out = subprocess.run(["ls", "-lR", m.mountpoint], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("link -> dir/file", out.stdout)
        self.check_tree(m.mountpoint)

    def test_we_write_s3fs_reads(self):
        m = self.mount(self.srv, options=["cache.size=32M"])
        self.write_tree(m.mountpoint)
        m.stop()
        time.sleep(0.2)
        self.check_tree(self.s3fs_start())


if __name__ == "__main__":
    unittest.main()
