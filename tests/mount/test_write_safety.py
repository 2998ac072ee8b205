"""Writes that never lose data (issue 9), on a real mount against the
reference server, with the fault proxy between them where a fault is needed.
Every check compares with what the server stored (its root is the bucket)."""
import errno
import json
import os
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import fault_proxy  # noqa: E402
import harness  # noqa: E402

MIB = 1 << 20
PART = 5 * MIB



def open_uploads(d):
    """The server's open multipart uploads (not the records of completed ones)."""
    return [n for n in os.listdir(d) if not n.endswith(".completed")] if os.path.isdir(d) else []

class Base(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server()
        self.proxy = fault_proxy.FaultProxy(self.srv.port)
        self.staging = os.path.join(self.tmp, "staging")

    def tearDown(self):
        self.proxy.clear()
        super().tearDown()
        self.proxy.stop()

    def mnt(self, extra=(), name="mnt", buffers=4):
        opts = ["cache.size=32M", f"write.part_size={PART}", f"write.buffer_memory={buffers * PART}",
                f"write.staging_dir={self.staging}", "metadata.attr_ttl=5s",
                "metadata.entry_ttl=5s", "metadata.negative_ttl=1s", "s3.max_retries=2",
                "s3.low_speed_timeout=5s"]
        return self.mount(self.proxy.endpoint, name=name, options=opts + list(extra))

    def path(self, key):
        return os.path.join(self.root, "bucket", key)

    def stored(self, key):
        with open(self.path(key), "rb") as f:
            return f.read()

    def uploads(self):
        return open_uploads(os.path.join(self.root, ".s3rdma-multipart"))

    def s3api(self, *args):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=harness.ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=harness.SECRET_KEY, AWS_DEFAULT_REGION="us-east-1")
        out = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.srv.endpoint, "s3api", *args],
                             env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout) if out.stdout.strip() else {}

class WriteSafetyTest(Base):
    # 1. dd without conv=notrunc: open without O_TRUNC, then ftruncate(fd, 0).
    def test_ftruncate_then_rewrite_keeps_the_old_object_until_close(self):
        old = os.urandom(3 * MIB)
        self.write("old", old)
        m = self.mnt()
        fd = os.open(os.path.join(m.mountpoint, "old"), os.O_WRONLY | os.O_CREAT)
        os.ftruncate(fd, 0)
        self.assertEqual(self.stored("old"), old, "ftruncate published nothing")
        os.write(fd, b"new" * 1000)
        self.assertEqual(self.stored("old"), old, "writing published nothing")
        self.proxy.add("error", method="PUT", times=None, status=503)
        with self.assertRaises(OSError) as e:
            os.close(fd)
        self.assertEqual(e.exception.errno, errno.EIO)
        self.assertGreater(self.proxy.rules[0].hits, 0, "the PUT was refused")
        self.assertEqual(self.stored("old"), old, "a failed close changes nothing")
        self.assertIn("not saved", m.log_text())

    def test_dd_over_an_existing_file(self):
        old, new = os.urandom(2 * MIB), os.urandom(3 * PART + 99)
        self.write("dd", old)
        src = os.path.join(self.tmp, "new")
        with open(src, "wb") as f:
            f.write(new)
        m = self.mnt()
        subprocess.run(["dd", f"if={src}", f"of={m.mountpoint}/dd", "bs=1M", "status=none"], check=True)
        self.assertEqual(self.stored("dd"), new)

    # 2 and 4: a header patch after the stream passed far beyond write.buffer_memory.
    def test_header_patch_of_a_file_larger_than_the_write_buffers(self):
        self.write("k", b"OLD\n")
        m = self.mnt(buffers=2)
        body = os.urandom(6 * PART + 4321)
        with open(os.path.join(m.mountpoint, "k"), "wb") as f:
            f.write(b"\0" * 16)
            for i in range(0, len(body), MIB):
                f.write(body[i:i + MIB])
            harness.wait_for(lambda: len(self.uploads()) == 1, what="a multipart upload")
            f.seek(0)
            f.write(b"HEADER-PATCHED!!")
            f.seek(3 * PART + 5)
            f.write(b"middle")
            self.assertEqual(self.stored("k"), b"OLD\n", "nothing published before close")
        want = bytearray(b"HEADER-PATCHED!!" + body)
        want[3 * PART + 5:3 * PART + 11] = b"middle"
        self.assertEqual(self.stored("k"), bytes(want))
        self.assertEqual(self.uploads(), [])

    def test_failed_commit_of_a_patched_stream_leaves_the_old_version(self):
        self.write("k", b"OLD\n")
        m = self.mnt(buffers=2)
        fd = os.open(os.path.join(m.mountpoint, "k"), os.O_WRONLY | os.O_TRUNC)
        os.write(fd, os.urandom(5 * PART))
        os.pwrite(fd, b"header", 0)
        self.proxy.add("error", method="POST", target=r"uploadId=", times=None, status=500,
                       code="InternalError")
        with self.assertRaises(OSError):
            os.close(fd)
        self.assertGreater(self.proxy.rules[0].hits, 0, "the Complete was refused")
        self.assertEqual(self.stored("k"), b"OLD\n")
        self.assertIn("not saved", m.log_text())

    # 3. HDF5 writes its index behind the data. h5py runs in a child process:
    # it holds the GIL across open(2), which would starve the in-process proxy.
    H5_WRITE = """
import sys, h5py, numpy
rows = numpy.arange(2000 * 4096, dtype=numpy.float32).reshape(2000, 4096)
with h5py.File(sys.argv[1], "w") as f:
    d = f.create_dataset("x", shape=rows.shape, dtype="f4", chunks=(64, 4096))
    for i in range(0, 2000, 100):
        d[i:i + 100] = rows[i:i + 100]
    f.attrs["done"] = 1
"""
    H5_CHECK = """
import sys, h5py, numpy
rows = numpy.arange(2000 * 4096, dtype=numpy.float32).reshape(2000, 4096)
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["done"] == 1
    assert numpy.array_equal(f["x"][1234:1300, 7:99], rows[1234:1300, 7:99])
    assert numpy.array_equal(f["x"][:], rows)
print("h5 ok")
"""

    def write_then_check_after_remount(self, module, writer, checker, name, ok):
        """Runs `writer` on the mount in a child python3 (which needs `module`),
        remounts, and runs `checker`, which must print `ok`."""
        py = "/usr/bin/python3"
        if subprocess.run([py, "-c", f"import {module}"], capture_output=True).returncode != 0:
            self.skipTest(f"python3 {module} is not installed (scripts/install-deps.sh --test installs it)")
        m = self.mnt(buffers=2)
        subprocess.run([py, "-c", writer, os.path.join(m.mountpoint, name)], check=True, timeout=120)
        m.stop()
        m2 = self.mnt(name="again")
        out = subprocess.run([py, "-c", checker, os.path.join(m2.mountpoint, name)],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(ok, out.stdout)

    def test_h5py_chunked_dataset(self):
        self.write_then_check_after_remount("h5py", self.H5_WRITE, self.H5_CHECK, "data.h5", "h5 ok")

    NC_WRITE = """
import sys, numpy, netCDF4
with netCDF4.Dataset(sys.argv[1], "w") as ds:
    ds.createDimension("t", None)
    ds.createDimension("x", 2048)
    v = ds.createVariable("temp", "f4", ("t", "x"), chunksizes=(16, 2048))
    for i in range(0, 1600, 100):  # an unlimited dimension grows: index rewritten behind
        v[i:i + 100, :] = numpy.arange(i * 2048, (i + 100) * 2048, dtype="f4").reshape(100, 2048)
    ds.title = "checkpoint"
"""
    NC_CHECK = """
import sys, numpy, netCDF4
with netCDF4.Dataset(sys.argv[1]) as ds:
    assert ds.title == "checkpoint"
    v = ds["temp"]
    assert v.shape == (1600, 2048), v.shape
    assert numpy.array_equal(v[777, :], numpy.arange(777 * 2048, 778 * 2048, dtype="f4"))
print("nc ok")
"""

    def test_netcdf4_with_an_unlimited_dimension(self):
        self.write_then_check_after_remount("netCDF4", self.NC_WRITE, self.NC_CHECK, "run.nc", "nc ok")

    # 5. A reader of a file replaced by rename keeps its version.
    def test_rename_over_an_open_file_keeps_its_reader(self):
        old = os.urandom(40 * MIB)  # more than the cache: the reader must fetch after the rename
        self.write("b", old)
        m = self.mnt()
        with open(os.path.join(m.mountpoint, "a"), "wb") as f:
            f.write(b"replacement")
        with open(os.path.join(m.mountpoint, "b"), "rb", buffering=0) as r:
            self.assertEqual(r.read(1000), old[:1000])
            os.rename(os.path.join(m.mountpoint, "a"), os.path.join(m.mountpoint, "b"))
            self.assertEqual(self.stored("b"), b"replacement")
            self.assertEqual(r.read(), old[1000:])
        with open(os.path.join(m.mountpoint, "b"), "rb") as f:
            self.assertEqual(f.read(), b"replacement")
        time.sleep(0.2)
        bucket = os.path.join(self.root, "bucket")
        self.assertEqual(sorted(set(os.listdir(bucket)) - {".s3rdmafs-preserved"}), ["b"],
                         "nothing foreign left after the last close")
        preserved = os.path.join(bucket, ".s3rdmafs-preserved")
        if os.path.exists(preserved):  # the directory records stay; the copy aside is gone
            self.assertEqual(os.listdir(preserved), ["records"])

    # 6. A fresh open after another client's overwrite sees the new version.
    def test_fresh_open_after_a_foreign_overwrite(self):
        self.write("f", b"version 1" * 1000)
        m = self.mnt()
        p = os.path.join(m.mountpoint, "f")
        self.assertEqual(os.stat(p).st_size, 9000)
        self.s3api("put-object", "--bucket", "bucket", "--key", "f", "--body", self.write("v2", b"v2" * 10))
        with open(p, "rb") as f:
            self.assertEqual(f.read(), b"v2" * 10)

    # 7. Attribute changes keep the object's other headers.
    def test_chmod_keeps_other_metadata_and_headers(self):
        m = self.mnt()
        src = self.write("src", b"body")
        self.s3api("put-object", "--bucket", "bucket", "--key", "obj", "--body", src,
                   "--metadata", "color=blue", "--content-type", "text/x-test",
                   "--cache-control", "max-age=7")
        p = os.path.join(m.mountpoint, "obj")
        os.chmod(p, 0o600)
        os.utime(p, (1000000, 1000000))
        h = self.s3api("head-object", "--bucket", "bucket", "--key", "obj")
        self.assertEqual(h["Metadata"].get("color"), "blue", h)
        self.assertEqual(h["ContentType"], "text/x-test")  # Cache-Control: the server drops it (issue 12)
        self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600)
        self.assertEqual(self.stored("obj"), b"body")

    # 8. Truncation moves mtime, locally and on the server.
    def test_truncate_moves_mtime(self):
        self.write("t", b"0123456789")
        os.utime(self.path("t"), (1000000, 1000000))
        m = self.mnt()
        p = os.path.join(m.mountpoint, "t")
        before = os.stat(p).st_mtime
        os.truncate(p, 4)
        self.assertGreater(os.stat(p).st_mtime, before + 1000)
        with open(p, "r+b") as f:
            os.utime(p, (2000000, 2000000))
            f.truncate(2)
        self.assertGreater(os.stat(p).st_mtime, 3000000)
        h = self.s3api("head-object", "--bucket", "bucket", "--key", "t")
        self.assertGreater(float(h["Metadata"]["mtime"]), 3000000, h)

    # 9. A lost reply to CompleteMultipartUpload is not a failure.
    def test_lost_complete_reply(self):
        m = self.mnt()
        data = os.urandom(3 * PART + 5)
        rule = self.proxy.add("lost", method="POST", target=r"uploadId=")
        with open(os.path.join(m.mountpoint, "big"), "wb") as f:
            f.write(data)
        self.assertEqual(rule.hits, 1, "the Complete reply was lost")
        self.assertEqual(self.stored("big"), data)
        self.assertEqual(self.proxy.count("DELETE", r"uploadId="), 0, "no abort of a completed upload")
        self.assertEqual(self.uploads(), [])

    # Conditional writes.
    def test_o_excl_lock_file_has_one_winner_across_mounts(self):
        a = self.mnt(name="a")
        b = self.mnt(name="b")
        fa = os.open(os.path.join(a.mountpoint, "lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        fb = os.open(os.path.join(b.mountpoint, "lock"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fa, b"held by a")
        os.write(fb, b"held by b")
        os.close(fa)
        with self.assertRaises(OSError) as e:
            os.close(fb)
        self.assertEqual(e.exception.errno, errno.EEXIST)
        self.assertEqual(self.stored("lock"), b"held by a")
        self.assertGreater(self.proxy.count("PUT", r"/bucket/lock$"), 1)

    def test_commit_over_another_clients_overwrite_fails_and_keeps_theirs(self):
        self.write("shared", b"v1")
        m = self.mnt()
        fd = os.open(os.path.join(m.mountpoint, "shared"), os.O_RDWR)
        os.pwrite(fd, b"ours", 0)
        self.s3api("put-object", "--bucket", "bucket", "--key", "shared", "--body",
                   self.write("theirs.src", b"theirs"))
        with self.assertRaises(OSError) as e:
            os.close(fd)
        self.assertEqual(e.exception.errno, errno.ESTALE)
        self.assertEqual(self.stored("shared"), b"theirs")
        self.assertIn("changed by another client", m.log_text())

    def test_last_close_wins_when_asked(self):
        self.write("shared", b"v1")
        m = self.mnt(["write.conflict=overwrite"])
        fd = os.open(os.path.join(m.mountpoint, "shared"), os.O_RDWR)
        os.pwrite(fd, b"ours", 0)
        self.s3api("put-object", "--bucket", "bucket", "--key", "shared", "--body",
                   self.write("theirs.src", b"theirs"))
        os.close(fd)
        self.assertEqual(self.stored("shared"), b"ours")

    def test_lost_reply_to_a_conditional_put(self):
        self.write("c", b"old")
        m = self.mnt()
        rule = self.proxy.add("lost", method="PUT", target=r"/bucket/c$")
        with open(os.path.join(m.mountpoint, "c"), "r+b") as f:
            f.write(b"new bytes")
        self.assertEqual(rule.hits, 1, "the PUT's reply was lost")
        self.assertEqual(self.stored("c"), b"new bytes")
        self.assertIn("the reply to PutObject was lost", m.log_text())

    # 12. POSIX coverage: ctime, special files, directory mtime.
    def test_ctime_moves_on_chmod_write_and_truncate_and_is_stored_like_s3fs(self):
        self.write("c", b"0123456789")
        os.utime(self.path("c"), (1000000, 1000000))
        m = self.mnt()
        p = os.path.join(m.mountpoint, "c")
        os.utime(p, (1000000, 1000000))
        t0 = time.time() - 1
        os.chmod(p, 0o640)
        st = os.stat(p)
        self.assertGreater(st.st_ctime, t0)
        self.assertEqual(st.st_mtime, 1000000, "chmod moves ctime, not mtime")
        h = self.s3api("head-object", "--bucket", "bucket", "--key", "c")["Metadata"]
        self.assertGreater(float(h["ctime"]), t0)
        for change in (lambda: os.truncate(p, 3), lambda: open(p, "ab").write(b"more")):
            before = os.stat(p).st_ctime_ns
            time.sleep(0.01)
            change()
            self.assertGreater(os.stat(p).st_ctime_ns, before)

    def test_atime_is_kept_as_utimensat_sets_it_on_every_kind_of_file(self):
        m = self.mnt()
        d = m.mountpoint
        open(os.path.join(d, "f"), "wb").close()
        os.mkdir(os.path.join(d, "dir"))
        os.mkfifo(os.path.join(d, "fifo"))
        os.symlink("f", os.path.join(d, "link"))
        for name in ("f", "dir", "fifo"):
            os.utime(os.path.join(d, name), (1900000000, 1950000000))
        os.utime(os.path.join(d, "link"), (1960000000, 1970000000), follow_symlinks=False)
        for name, (a, mt) in (("f", (1900000000, 1950000000)), ("dir", (1900000000, 1950000000)),
                              ("fifo", (1900000000, 1950000000)), ("link", (1960000000, 1970000000))):
            st = os.lstat(os.path.join(d, name))
            self.assertEqual((st.st_atime, st.st_mtime), (a, mt), name)
        with open(os.path.join(d, "f"), "rb") as f:
            f.read()
        self.assertEqual(os.stat(os.path.join(d, "f")).st_atime, 1900000000, "reads never move atime")
        h = self.s3api("head-object", "--bucket", "bucket", "--key", "f")["Metadata"]
        self.assertEqual(int(float(h["atime"])), 1900000000, "x-amz-meta-atime, as s3fs keeps it")
        m.stop()
        m2 = self.mnt(name="again")
        for name in ("f", "dir/", "fifo"):
            self.assertEqual(os.lstat(os.path.join(m2.mountpoint, name.rstrip("/"))).st_atime, 1900000000, name)
        self.assertEqual(os.lstat(os.path.join(m2.mountpoint, "link")).st_atime, 1960000000)

    def test_fifo_socket_and_device_nodes_are_kept_as_s3fs_keeps_them(self):
        import socket
        m = self.mnt()
        os.mkfifo(os.path.join(m.mountpoint, "fifo"), 0o644)
        os.mknod(os.path.join(m.mountpoint, "null"), stat.S_IFCHR | 0o644, os.makedev(1, 3))
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(m.mountpoint, "sock"))
        s.close()
        h = self.s3api("head-object", "--bucket", "bucket", "--key", "fifo")["Metadata"]
        self.assertEqual(int(h["mode"]), stat.S_IFIFO | 0o644, "s3fs's form: the type in the mode")
        m.stop()
        m2 = self.mnt(name="again")
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(m2.mountpoint, "fifo")).st_mode))
        self.assertTrue(stat.S_ISSOCK(os.lstat(os.path.join(m2.mountpoint, "sock")).st_mode))
        st = os.lstat(os.path.join(m2.mountpoint, "null"))
        self.assertTrue(stat.S_ISCHR(st.st_mode))
        self.assertEqual(st.st_rdev, os.makedev(1, 3))

    def test_directory_mtime_moves_when_this_mount_adds_or_removes_entries(self):
        m = self.mnt()
        d = os.path.join(m.mountpoint, "d")
        os.mkdir(d)
        for change in (lambda: open(os.path.join(d, "f"), "wb").close(),
                       lambda: os.mkdir(os.path.join(d, "sub")),
                       lambda: os.rename(os.path.join(d, "f"), os.path.join(d, "g")),
                       lambda: os.unlink(os.path.join(d, "g")),
                       lambda: os.rmdir(os.path.join(d, "sub"))):
            before = os.stat(d).st_mtime_ns
            time.sleep(0.01)
            change()
            self.assertGreater(os.stat(d).st_mtime_ns, before)

    # 11. Small POSIX gaps.
    def test_mknod_regular_file(self):
        m = self.mnt()
        p = os.path.join(m.mountpoint, "node")
        os.mknod(p, stat.S_IFREG | 0o640)
        self.assertTrue(stat.S_ISREG(os.stat(p).st_mode))
        self.assertEqual(self.stored("node"), b"")

    def test_key_longer_than_s3_allows(self):
        m = self.mnt()
        d = m.mountpoint
        for i in range(4):  # 1,004 bytes of key
            d = os.path.join(d, "d" * 250)
            os.mkdir(d)
        with self.assertRaises(OSError) as e:
            open(os.path.join(d, "f" * 30), "wb").close()
        self.assertEqual(e.exception.errno, errno.ENAMETOOLONG)
        # Such a key cannot exist: looking it up finds nothing (pjdfstest's
        # rmdir/03 and unlink/03); only making it is ENAMETOOLONG.
        long = os.path.join(d, "g" * 30)
        for look in (os.stat, os.unlink, os.rmdir):
            with self.assertRaises(OSError) as e:
                look(long)
            self.assertEqual(e.exception.errno, errno.ENOENT, look.__name__)
        for make in (lambda: os.mkdir(long), lambda: os.symlink("x", long), lambda: os.mkfifo(long)):
            with self.assertRaises(OSError) as e:
                make()
            self.assertEqual(e.exception.errno, errno.ENAMETOOLONG)
        open(os.path.join(d, "short"), "wb").close()
        with self.assertRaises(OSError) as e:
            os.rename(os.path.join(d, "short"), long)
        self.assertEqual(e.exception.errno, errno.ENAMETOOLONG)

    def test_unlinked_open_file_has_no_links(self):
        self.write("u", b"bytes")
        m = self.mnt()
        p = os.path.join(m.mountpoint, "u")
        with open(p, "rb") as f:
            os.unlink(p)
            self.assertEqual(os.fstat(f.fileno()).st_nlink, 0)
            self.assertEqual(f.read(), b"bytes")


class DirRecordFaultTest(Base):
    # A directory's attribute record is a cache: a server that refuses its
    # writes, or a record that cannot be read, costs requests, never a file
    # or a mode.
    def test_a_refused_or_corrupt_directory_record_costs_requests_not_files(self):
        refused = self.proxy.add("error", method="PUT", target=r"/\.s3rdmafs-preserved/records/",
                                 times=None, status=503)
        m = self.mnt()
        for i in range(6):
            p = os.path.join(m.mountpoint, f"f{i}")
            with open(p, "wb") as f:
                f.write(b"%d" % i)
            os.chmod(p, 0o600 | i)
        m.stop()
        self.assertGreater(refused.hits, 0, "the record writes were refused")
        for i in range(6):
            self.assertEqual(self.stored(f"f{i}"), b"%d" % i)
        self.assertFalse(os.path.exists(self.path(".s3rdmafs-preserved/records/@")))
        self.proxy.clear()
        os.makedirs(self.path(".s3rdmafs-preserved/records"))
        with open(self.path(".s3rdmafs-preserved/records/@"), "wb") as f:
            f.write(b"not a record\n")
        m = self.mnt(name="again")
        self.assertEqual(sorted(os.listdir(m.mountpoint)), [f"f{i}" for i in range(6)])
        for i in range(6):  # the listing's HEADs learn these carry x-amz-meta-mode
            self.assertEqual(os.lstat(os.path.join(m.mountpoint, f"f{i}")).st_mode,
                             stat.S_IFREG | 0o600 | i, f"f{i}")
        self.assertIn("not used", m.log_text())
        with open(os.path.join(m.mountpoint, "f6"), "wb") as f:  # a change rewrites it whole
            f.write(b"6")
        m.stop()
        with open(self.path(".s3rdmafs-preserved/records/@"), "rb") as f:
            record = f.read().decode()
        self.assertTrue(record.startswith("s3rdmafs-dir-record 1\n"), record)
        self.assertIn("f6\t", record)


class SlowCommitTest(Base):
    """Issue 10: one slow commit does not freeze the mount."""

    def test_stat_and_listing_answer_while_a_commit_is_delayed(self):
        import threading
        for i in range(20):
            self.write(f"other/f{i}", b"x" * i)
        m = self.mnt()
        rule = self.proxy.add("delay", method="POST", target=r"uploadId=", seconds=4)
        p = os.path.join(m.mountpoint, "big")
        closer_done = threading.Event()

        def write_and_close():
            with open(p, "wb") as f:
                f.write(os.urandom(3 * PART))
            closer_done.set()
        t = threading.Thread(target=write_and_close)
        t.start()
        harness.wait_for(lambda: rule.hits == 1, what="the delayed Complete")
        latencies = []
        while not closer_done.is_set():
            for path in [p, os.path.join(m.mountpoint, "other", "f3")]:
                t0 = time.time()
                os.stat(path)
                latencies.append(time.time() - t0)
            t0 = time.time()
            for name in os.listdir(os.path.join(m.mountpoint, "other")):
                os.lstat(os.path.join(m.mountpoint, "other", name))
            latencies.append(time.time() - t0)
            time.sleep(0.05)
        t.join()
        self.assertGreater(len(latencies), 20, "the commit was delayed while we measured")
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        self.assertLess(p99, 0.1, f"p99 {p99:.3f}s while a commit waits (max {latencies[-1]:.3f}s)")
        self.assertEqual(os.stat(p).st_size, 3 * PART)


if __name__ == "__main__":
    unittest.main()
