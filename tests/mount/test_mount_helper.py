"""mount.s3rdmafs, the mount(8) helper, called the way mount(8) and fstab call it."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

HELPER = os.path.join(os.path.dirname(__file__), "..", "..", "packaging", "mount.s3rdmafs")


class MountHelperTest(harness.MountTestCase):
    def helper(self, *args):
        env = dict(os.environ, S3RDMAFS_BIN=harness.FS_BIN, AWS_ACCESS_KEY_ID=harness.ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=harness.SECRET_KEY)
        return subprocess.run([HELPER, *args], env=env, capture_output=True, text=True, timeout=60)

    def test_fstab_style_options(self):
        self.write("data/a.txt", b"via the helper")
        srv = self.server()
        cfg = os.path.join(self.tmp, "data.toml")
        with open(cfg, "w") as f:
            f.write(f'[s3]\nendpoint = "{srv.endpoint}"\n[cache]\nsize = "64MiB"\n')
        mnt = os.path.join(self.tmp, "mnt")
        os.makedirs(mnt)
        m = harness.Mount(mnt, os.path.join(self.tmp, "helper.log"))
        self._mounts.append(m)
        r = self.helper("bucket:/data", mnt, "-o",
                        f"rw,_netdev,noauto,nofail,x-systemd.automount,config={cfg},"
                        f"log_file={m.log},metadata.attr_ttl=30s")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(harness.is_mounted(mnt))
        with open(os.path.join(mnt, "a.txt"), "rb") as f:
            self.assertEqual(f.read(), b"via the helper")
        self.assertEqual(subprocess.run(["umount", mnt]).returncode, 0)
        self.assertFalse(harness.is_mounted(mnt))

    def test_unknown_option_is_a_clear_error_and_sloppy_ignores_it(self):
        r = self.helper("bucket", "/nonexistent", "-o", "cache.size=1G,frobnicate")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown mount option 'frobnicate'", r.stderr)
        r = self.helper("bucket", "/nonexistent", "-s", "-f", "-v", "-o", "frobnicate,cache.size=1G")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("-o cache.size=1G", r.stderr)


if __name__ == "__main__":
    unittest.main()
