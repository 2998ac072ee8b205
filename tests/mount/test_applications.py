"""Real applications write through the mount and find their data intact
after a remount: sqlite3 (transactions, journal), git, tar, rsync."""
import os
import shutil
import sqlite3
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

MIB = 1 << 20


class ApplicationsTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server()
        self.opts = ["cache.size=64M", f"write.part_size={5 * MIB}", f"write.buffer_memory={20 * MIB}",
                     f"write.staging_dir={os.path.join(self.tmp, 'staging')}"]

    def remount(self, m, name):
        m.stop()
        return self.mount(self.srv, name=name, options=self.opts)

    def test_sqlite_transactions_and_integrity(self):
        m = self.mount(self.srv, options=self.opts)
        db = os.path.join(m.mountpoint, "app.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=DELETE")  # a rollback journal file beside it
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        for batch in range(20):
            with con:
                con.executemany("INSERT INTO t (body) VALUES (?)",
                                [(f"row {batch}-{i} " + "x" * (i % 300),) for i in range(500)])
        with con:
            con.execute("DELETE FROM t WHERE id % 7 = 0")
        con.close()
        m2 = self.remount(m, "again")
        con = sqlite3.connect(os.path.join(m2.mountpoint, "app.db"))
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertEqual(con.execute("SELECT count(*) FROM t").fetchone()[0], 10000 - 10000 // 7)
        con.close()
        self.assertFalse(os.path.exists(os.path.join(m2.mountpoint, "app.db-journal")))

    def test_git_commit_status_gc(self):
        m = self.mount(self.srv, options=self.opts)
        repo = os.path.join(m.mountpoint, "repo")
        os.mkdir(repo)
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t", HOME=self.tmp)

        def git(*args):
            return subprocess.run(["git", "-C", repo, *args], env=env, check=True, capture_output=True,
                                  text=True, timeout=600).stdout
        git("init", "-q")
        for d in range(20):
            os.mkdir(os.path.join(repo, f"d{d}"))
            for f in range(100):
                with open(os.path.join(repo, f"d{d}", f"f{f}.txt"), "w") as fh:
                    fh.write(f"file {d}/{f}\n" * (1 + f % 5))
        git("add", "-A")
        git("commit", "-q", "-m", "2,000 files")
        self.assertEqual(git("status", "--porcelain"), "")
        git("gc", "-q")
        m2 = self.remount(m, "again")
        repo = os.path.join(m2.mountpoint, "repo")
        self.assertEqual(git("status", "--porcelain"), "")
        self.assertEqual(git("ls-files").count("\n"), 2000)
        git("fsck", "--full")

    def test_tar_extract_then_diff(self):
        src = os.path.join(self.tmp, "src")
        for d in range(5):
            os.makedirs(os.path.join(src, f"dir{d}", "sub"))
            for f in range(20):
                with open(os.path.join(src, f"dir{d}", "sub" if f % 2 else "", f"f{f}"), "wb") as fh:
                    fh.write(os.urandom(f * 1000))
        big = os.path.join(src, "big.bin")
        with open(big, "wb") as fh:
            fh.write(os.urandom(12 * MIB))
        os.symlink("big.bin", os.path.join(src, "link"))
        archive = os.path.join(self.tmp, "a.tar")
        subprocess.run(["tar", "-C", src, "-cf", archive, "."], check=True)
        m = self.mount(self.srv, options=self.opts)
        out = os.path.join(m.mountpoint, "x")
        os.mkdir(out)
        subprocess.run(["tar", "-C", out, "-xf", archive], check=True, timeout=300)
        m2 = self.remount(m, "again")
        d = subprocess.run(["diff", "-r", "--no-dereference", src, os.path.join(m2.mountpoint, "x")],
                           capture_output=True, text=True)
        self.assertEqual(d.returncode, 0, d.stdout + d.stderr)

    def test_rsync_there_and_back(self):
        if not shutil.which("rsync"):
            self.skipTest("rsync is not installed (scripts/install-deps.sh --test installs it)")
        src = os.path.join(self.tmp, "src")
        os.makedirs(os.path.join(src, "a", "b"))
        for i in range(30):
            p = os.path.join(src, "a" if i % 2 else "a/b", f"f{i}")
            with open(p, "wb") as fh:
                fh.write(os.urandom(i * 777))
            os.chmod(p, 0o600 + (i % 3) * 0o040)
            os.utime(p, (1600000000 + i, 1600000000 + i))
        m = self.mount(self.srv, options=self.opts)
        dst = os.path.join(m.mountpoint, "copy")
        subprocess.run(["rsync", "-a", src + "/", dst + "/"], check=True, timeout=300)
        m2 = self.remount(m, "again")
        back = os.path.join(self.tmp, "back")
        subprocess.run(["rsync", "-a", os.path.join(m2.mountpoint, "copy") + "/", back + "/"], check=True,
                       timeout=300)
        for root, _, files in os.walk(src):
            for f in files:
                a = os.path.join(root, f)
                b = os.path.join(back, os.path.relpath(a, src))
                sa, sb = os.stat(a), os.stat(b)
                self.assertEqual(sa.st_mode, sb.st_mode, b)
                self.assertEqual(int(sa.st_mtime), int(sb.st_mtime), b)
                with open(a, "rb") as x, open(b, "rb") as y:
                    self.assertEqual(x.read(), y.read(), b)
        # A second rsync finds nothing to send: sizes and mtimes match.
        r = subprocess.run(["rsync", "-a", "--itemize-changes", src + "/", os.path.join(m2.mountpoint, "copy") + "/"],
                           check=True, capture_output=True, text=True, timeout=300)
        self.assertEqual([line for line in r.stdout.splitlines() if line.startswith(">f")], [])


if __name__ == "__main__":
    unittest.main()
