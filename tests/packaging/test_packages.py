"""The packages as a user gets them: cpack builds the .deb and the .rpm from
the release build; lintian must be clean and rpm must require what the
binaries link; the .deb is installed on this machine, its binaries, units
and mount helper are used for real (mount -t s3rdmafs, umount), and a purge
must leave nothing behind. Needs root; changes the machine's packages, so it
runs in the test command on a throw-away CI machine (label `package`)."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

BUILD = harness.BUILD


def run(*args, check=True, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=300, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("dpkg") and shutil.which("rpm"),
                     "needs root, dpkg and rpm (scripts/install-deps.sh --test)")
class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for old in glob.glob(os.path.join(BUILD, "s3rdmafs*.deb")) + glob.glob(os.path.join(BUILD, "s3rdmafs*.rpm")):
            os.unlink(old)
        run("cpack", "-G", "DEB;RPM", cwd=BUILD)
        cls.deb = glob.glob(os.path.join(BUILD, "s3rdmafs_*.deb"))[0]
        cls.rpm = glob.glob(os.path.join(BUILD, "s3rdmafs-*.rpm"))[0]

    def test_deb_is_lintian_clean(self):
        r = run("lintian", "--fail-on", "error,warning", self.deb, check=False)
        tags = [l for l in (r.stdout + r.stderr).splitlines() if l[:2] in ("E:", "W:")]
        self.assertEqual(tags, [], "lintian tags")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_rpm_requires_what_the_binaries_link(self):
        requires = run("rpm", "-qpR", self.rpm).stdout
        for lib in ["libfuse3.so.3", "libibverbs.so.1", "librdmacm.so.1", "libcurl.so.4", "libcrypto.so.3",
                    "libsystemd.so.0", "fuse3"]:
            self.assertIn(lib, requires)
        files = run("rpm", "-qpl", self.rpm).stdout.split()
        for f in ["/usr/bin/s3rdmafs", "/usr/bin/s3rdma-server", "/usr/bin/s3rdmafs-probe",
                  "/usr/sbin/mount.s3rdmafs", "/lib/systemd/system/s3rdmafs@.service",
                  "/lib/systemd/system/s3rdma-gateway.service", "/etc/s3rdmafs/gateway.toml.example",
                  "/usr/share/man/man5/s3rdmafs.toml.5.gz", "/etc/s3rdmafs/example.toml"]:
            self.assertIn(f, files)
        self.assertNotIn("/usr/bin", files, "the package must not own system directories")
        self.assertIn("config(s3rdmafs)", requires, "the example config is a %config file")

    def test_install_use_and_purge_the_deb(self):
        depends = run("dpkg-deb", "-f", self.deb, "Depends").stdout
        for dep in ["libfuse3-3", "libibverbs1", "librdmacm1", "libcurl4", "libssl3", "fuse3"]:
            self.assertIn(dep, depends)
        run("dpkg", "--purge", "s3rdmafs", check=False)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run("apt-get", "install", "-y", "-q", "--no-install-recommends", self.deb, env=env)
        tmp = tempfile.mkdtemp(prefix="s3rdmafs-pkg-")
        server = None
        mnt = os.path.join(tmp, "mnt")
        try:
            owned = [p for p in run("dpkg", "-L", "s3rdmafs").stdout.split() if os.path.isfile(p)]
            self.assertIn("/usr/bin/s3rdmafs", owned)
            for binary in ["/usr/bin/s3rdmafs", "/usr/bin/s3rdma-server"]:
                self.assertIn("0.1.0", run(binary, "--version").stdout)
            self.assertIn("devices", run("/usr/bin/s3rdmafs-probe", "--help").stdout)
            manpages = [p for p in owned if p.startswith("/usr/share/man/")]
            if shutil.which("man") and manpages:  # minimal images tell dpkg to skip man pages
                self.assertIn("S3RDMAFS.TOML", run("man", "-P", "cat", "5", "s3rdmafs.toml",
                                                    env=dict(os.environ, MANWIDTH="80")).stdout.upper())
            listed = run("dpkg-deb", "-c", self.deb).stdout
            for page in ["man5/s3rdmafs.toml.5.gz", "man8/s3rdmafs.8.gz", "man8/mount.s3rdmafs.8.gz",
                         "man8/s3rdma-server.8.gz", "man8/s3rdmafs-probe.8.gz", "man7/s3rdmafs-semantics.7.gz"]:
                self.assertIn(page, listed)

            # systemd must accept the units as installed (an instance of the template).
            units = os.path.join(tmp, "units")
            os.makedirs(units)
            shutil.copy("/lib/systemd/system/s3rdmafs@.service", os.path.join(units, "s3rdmafs@demo.service"))
            shutil.copy("/lib/systemd/system/s3rdma-server.service", units)
            shutil.copy("/lib/systemd/system/s3rdma-gateway.service", units)
            r = run("systemd-analyze", "verify", "--man=no", os.path.join(units, "s3rdmafs@demo.service"),
                    os.path.join(units, "s3rdma-server.service"),
                    os.path.join(units, "s3rdma-gateway.service"), check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

            # The installed server, mounted through mount(8) and the installed helper.
            root = os.path.join(tmp, "root")
            os.makedirs(os.path.join(root, "bucket"))
            with open(os.path.join(root, "bucket", "hello.txt"), "w") as f:
                f.write("from the package\n")
            port_file = os.path.join(tmp, "port")
            server = subprocess.Popen(["/usr/bin/s3rdma-server", "--root", root, "--port", "0", "--port-file",
                                       port_file, "--access-key", "PKGKEY", "--secret-key", "PKGSECRET"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            harness.wait_for(lambda: os.path.exists(port_file), what="installed server")
            with open(port_file) as f:
                port = f.read().strip()
            cfg = os.path.join(tmp, "pkg.toml")
            with open(cfg, "w") as f:
                f.write(f'[s3]\nendpoint = "http://127.0.0.1:{port}"\naccess_key = "PKGKEY"\n'
                        f'secret_key = "PKGSECRET"\n[cache]\nsize = "32MiB"\n[write]\n'
                        f'staging_dir = "{tmp}/staging"\n')
            os.makedirs(mnt)
            run("mount", "-t", "s3rdmafs", "bucket", mnt, "-o", f"config={cfg},_netdev,metadata.attr_ttl=1s")
            self.assertTrue(harness.is_mounted(mnt))
            with open(os.path.join(mnt, "hello.txt")) as f:
                self.assertEqual(f.read(), "from the package\n")
            with open(os.path.join(mnt, "written.txt"), "w") as f:
                f.write("through the installed daemon\n")
            self.assertTrue(os.path.exists(os.path.join(root, "bucket", "written.txt")))
            run("umount", mnt)
            self.assertFalse(harness.is_mounted(mnt))
            # The fstab line, as mount(8) reads it (a private fstab file, not /etc/fstab).
            fstab = os.path.join(tmp, "fstab")
            with open(fstab, "w") as f:
                f.write(f"bucket  {mnt}  s3rdmafs  _netdev,nofail,config={cfg},cache.size=16M  0 0\n")
            run("mount", "--fstab", fstab, mnt)
            with open(os.path.join(mnt, "written.txt")) as f:
                self.assertEqual(f.read(), "through the installed daemon\n")
            run("umount", mnt)
            self.assertFalse(harness.is_mounted(mnt))
        finally:
            if harness.is_mounted(mnt):
                subprocess.run(["umount", "-l", mnt])
            if server:
                server.terminate()
                server.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)
            run("dpkg", "--purge", "s3rdmafs")
        stray = [p for p in owned + ["/etc/s3rdmafs", "/var/cache/s3rdmafs", "/usr/share/doc/s3rdmafs"]
                 if os.path.exists(p)]
        self.assertEqual(stray, [], "a purge leaves nothing behind")
        self.assertNotIn("ii", run("dpkg", "-l", "s3rdmafs", check=False).stdout)


if __name__ == "__main__":
    unittest.main()
