"""Writes through a real mount against the reference server: streaming
multipart uploads, in-place edits, namespace operations, metadata,
consistency, crash safety and bad input. Every check compares bytes with
what the server stored (its root directory is the bucket)."""
import errno
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

MIB = 1 << 20
PART = 5 * MIB  # the smallest part S3 allows: multipart shows with small files


def stats(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#"):
                    continue
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
    except FileNotFoundError:
        pass
    return out



def open_uploads(d):
    """The server's open multipart uploads (not the records of completed ones)."""
    return [n for n in os.listdir(d) if not n.endswith(".completed")] if os.path.isdir(d) else []

class WriteTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server()
        self.stats_file = os.path.join(self.tmp, "stats.prom")
        self.staging = os.path.join(self.tmp, "staging")

    def mnt(self, extra=(), name="mnt"):
        opts = ["cache.size=64M", f"write.part_size={PART}", f"write.buffer_memory={8 * PART}",
                f"write.staging_dir={self.staging}", "metadata.attr_ttl=1s",
                "metadata.entry_ttl=1s", "metadata.negative_ttl=1s", f"log.stats_file={self.stats_file}"]
        return self.mount(self.srv, name=name, options=opts + list(extra))

    def stored(self, key):
        with open(os.path.join(self.root, "bucket", key), "rb") as f:
            return f.read()

    def exists(self, key):
        return os.path.exists(os.path.join(self.root, "bucket", key))

    def uploads(self):
        return open_uploads(os.path.join(self.root, ".s3rdma-multipart"))

    # ---- sequential writes stream out as multipart uploads ----

    def test_sizes_around_part_boundaries(self):
        m = self.mnt()
        for size in [0, 1, 4096, PART - 1, PART, PART + 1, 2 * PART, 3 * PART + 7]:
            with self.subTest(size=size):
                data = os.urandom(size)
                p = os.path.join(m.mountpoint, f"f{size}")
                with open(p, "wb") as f:
                    for i in range(0, size, 128 * 1024):
                        f.write(data[i:i + 128 * 1024])
                self.assertEqual(self.stored(f"f{size}"), data)
                self.assertEqual(os.stat(p).st_size, size)
                with open(p, "rb") as f:
                    self.assertEqual(f.read(), data)
        self.assertEqual(self.uploads(), [], "completed uploads leave nothing behind")

    def test_object_appears_whole_at_close(self):
        m = self.mnt()
        p = os.path.join(m.mountpoint, "big")
        data = os.urandom(3 * PART + 100)
        f = open(p, "wb")
        f.write(data[:3 * PART])
        # Parts 2 and 3 are on the server by now, in an upload; no object yet.
        harness.wait_for(lambda: len(self.uploads()) == 1, what="a multipart upload")
        self.assertFalse(self.exists("big"))
        f.write(data[3 * PART:])
        f.close()
        self.assertEqual(self.stored("big"), data)
        self.assertEqual(self.uploads(), [])

    def test_fsync_publishes_and_writing_goes_on(self):
        m = self.mnt()
        p = os.path.join(m.mountpoint, "log")
        with open(p, "wb") as f:
            f.write(b"line 1\n")
            f.flush()
            os.fsync(f.fileno())
            self.assertEqual(self.stored("log"), b"line 1\n")
            f.write(b"line 2\n")
        self.assertEqual(self.stored("log"), b"line 1\nline 2\n")

    def test_seek_back_to_patch_a_header(self):
        m = self.mnt()
        body = os.urandom(2 * PART + 12345)
        with open(os.path.join(m.mountpoint, "archive"), "wb") as f:
            f.write(b"\0" * 16 + body)
            f.seek(0)
            f.write(b"HEADER-PATCHED!!")
        self.assertEqual(self.stored("archive"), b"HEADER-PATCHED!!" + body)

    def test_random_writer_on_a_new_file(self):
        m = self.mnt()
        with open(os.path.join(m.mountpoint, "sparse"), "wb") as f:
            f.seek(3 * MIB)
            f.write(b"tail")
            f.seek(1000)
            f.write(b"middle")
        want = bytearray(3 * MIB + 4)
        want[1000:1006] = b"middle"
        want[3 * MIB:] = b"tail"
        self.assertEqual(self.stored("sparse"), bytes(want))

    def test_write_into_an_uploaded_part_is_sent_again(self):
        m = self.mnt()
        data = bytearray(os.urandom(3 * PART))
        fd = os.open(os.path.join(m.mountpoint, "stream"), os.O_WRONLY | os.O_CREAT)
        os.write(fd, data)
        harness.wait_for(lambda: len(self.uploads()) == 1, what="parts on the server")
        os.pwrite(fd, b"x", PART + 10)  # part 2 was sent
        os.close(fd)
        data[PART + 10] = ord("x")
        self.assertEqual(self.stored("stream"), bytes(data))

    def test_staged_random_writes_when_streaming_is_off(self):
        m = self.mnt(["write.streaming=false"])
        data = bytearray(os.urandom(3 * PART))
        fd = os.open(os.path.join(m.mountpoint, "staged"), os.O_WRONLY | os.O_CREAT)
        os.write(fd, bytes(data))
        os.pwrite(fd, b"x", PART + 10)
        os.close(fd)
        data[PART + 10] = ord("x")
        self.assertEqual(self.stored("staged"), bytes(data))

    # ---- edits of existing objects ----

    def test_edit_in_place_sends_only_the_changed_part(self):
        data = bytearray(os.urandom(4 * PART))
        self.write("edit", bytes(data))
        m = self.mnt()
        p = os.path.join(m.mountpoint, "edit")
        with open(p, "r+b") as f:
            f.seek(2 * PART + 5)
            f.write(b"patched")
        data[2 * PART + 5:2 * PART + 12] = b"patched"
        self.assertEqual(self.stored("edit"), bytes(data))
        s = stats(self.stats_file)
        harness.wait_for(lambda: stats(self.stats_file).get("s3rdmafs_http_bytes_sent_total", 0) > 0,
                         what="stats")
        sent = stats(self.stats_file)["s3rdmafs_http_bytes_sent_total"]
        self.assertLessEqual(sent, PART, f"only the changed part travels (sent {sent}); {s}")
        with open(p, "rb") as f:
            self.assertEqual(f.read(), bytes(data))

    def test_append_and_overwrite_with_truncate(self):
        self.write("a", b"hello ")
        m = self.mnt()
        p = os.path.join(m.mountpoint, "a")
        with open(p, "ab") as f:
            f.write(b"world")
        self.assertEqual(self.stored("a"), b"hello world")
        with open(p, "wb") as f:  # O_TRUNC: the old object stays until the close
            self.assertEqual(self.stored("a"), b"hello world")
            f.write(b"new")
            f.flush()
            self.assertEqual(self.stored("a"), b"hello world")
        self.assertEqual(self.stored("a"), b"new")
        with open(p, "rb") as f:
            self.assertEqual(f.read(), b"new")

    def test_truncate(self):
        self.write("t", b"0123456789")
        m = self.mnt()
        p = os.path.join(m.mountpoint, "t")
        os.truncate(p, 4)  # by path: no open file
        self.assertEqual(self.stored("t"), b"0123")
        os.truncate(p, 8)
        self.assertEqual(self.stored("t"), b"0123\0\0\0\0")
        with open(p, "r+b") as f:
            f.truncate(2)
            f.seek(5)
            f.write(b"Z")
        self.assertEqual(self.stored("t"), b"01\0\0\0Z")

    def test_reads_see_own_unsaved_writes(self):
        self.write("rw", b"a" * 100)
        m = self.mnt()
        p = os.path.join(m.mountpoint, "rw")
        with open(p, "r+b", buffering=0) as w, open(p, "rb", buffering=0) as r:
            w.seek(10)
            w.write(b"BBB")
            self.assertEqual(os.pread(r.fileno(), 20, 0), b"a" * 10 + b"BBB" + b"a" * 7)
            self.assertEqual(os.stat(p).st_size, 100)

    # ---- namespace ----

    def test_mkdir_rmdir(self):
        m = self.mnt()
        d = os.path.join(m.mountpoint, "d")
        os.mkdir(d, 0o750)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "bucket", "d")))
        self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o750)
        with open(os.path.join(d, "f"), "wb") as f:
            f.write(b"x")
        with self.assertRaises(OSError) as e:
            os.rmdir(d)
        self.assertEqual(e.exception.errno, errno.ENOTEMPTY)
        with self.assertRaises(OSError) as e:
            os.mkdir(d)
        self.assertEqual(e.exception.errno, errno.EEXIST)
        os.unlink(os.path.join(d, "f"))
        os.rmdir(d)
        self.assertFalse(os.path.exists(d))
        self.assertFalse(self.exists("d"))

    def test_rename_file_keeps_bytes_and_attributes(self):
        m = self.mnt()
        a, b = os.path.join(m.mountpoint, "a"), os.path.join(m.mountpoint, "b")
        data = os.urandom(2 * PART + 3)
        with open(a, "wb") as f:
            f.write(data)
        os.chmod(a, 0o600)
        os.utime(a, ns=(0, 1234567890123456789))
        os.rename(a, b)
        self.assertFalse(self.exists("a"))
        self.assertEqual(self.stored("b"), data)
        st = os.stat(b)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_mtime_ns, 1234567890123456789)
        with open(os.path.join(m.mountpoint, "c"), "wb") as f:
            f.write(b"replaced")
        os.rename(os.path.join(m.mountpoint, "c"), b)  # over an existing file
        self.assertEqual(self.stored("b"), b"replaced")
        self.assertEqual(sorted(os.listdir(m.mountpoint)), ["b"])

    def test_rename_directory_recursively(self):
        m = self.mnt()
        src = os.path.join(m.mountpoint, "src")
        os.makedirs(os.path.join(src, "sub", "deeper"))
        files = {"x": b"1", "sub/y": b"22", "sub/deeper/z": os.urandom(PART + 1)}
        for k, v in files.items():
            with open(os.path.join(src, k), "wb") as f:
                f.write(v)
        os.rename(src, os.path.join(m.mountpoint, "dst"))
        for k, v in files.items():
            self.assertEqual(self.stored("dst/" + k), v)
            with open(os.path.join(m.mountpoint, "dst", k), "rb") as f:
                self.assertEqual(f.read(), v)
        self.assertFalse(self.exists("src"))
        self.assertEqual(os.listdir(m.mountpoint), ["dst"])

    def test_symlink(self):
        m = self.mnt()
        with open(os.path.join(m.mountpoint, "target"), "wb") as f:
            f.write(b"pointed at")
        link = os.path.join(m.mountpoint, "link")
        os.symlink("target", link)
        self.assertEqual(os.readlink(link), "target")
        self.assertTrue(stat.S_ISLNK(os.lstat(link).st_mode))
        with open(link, "rb") as f:
            self.assertEqual(f.read(), b"pointed at")
        self.assertEqual(self.stored("link"), b"target")

    def test_attributes_survive_a_remount(self):
        m = self.mnt()
        p = os.path.join(m.mountpoint, "f")
        with open(p, "wb") as f:
            f.write(b"x")
        os.chmod(p, 0o751)
        os.chown(p, 1234, 5678)
        os.utime(p, ns=(0, 1600000000123456789))
        os.mkdir(os.path.join(m.mountpoint, "d"), 0o700)
        m.stop()
        m2 = self.mnt(name="again")
        st = os.stat(os.path.join(m2.mountpoint, "f"))
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o751, 1234, 5678))
        self.assertEqual(st.st_mtime_ns, 1600000000123456789)
        listed = {e.name: e for e in os.scandir(m2.mountpoint)}
        self.assertEqual(stat.S_IMODE(listed["f"].stat().st_mode), 0o751)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(m2.mountpoint, "d")).st_mode), 0o700)

    def test_a_file_being_written_is_listed(self):
        m = self.mnt()
        with open(os.path.join(m.mountpoint, "inflight"), "wb") as f:
            f.write(b"not yet uploaded")
            self.assertIn("inflight", os.listdir(m.mountpoint))
            self.assertFalse(self.exists("inflight"))

    def test_statfs_is_writable_and_large(self):
        m = self.mnt()
        st = os.statvfs(m.mountpoint)
        self.assertGreater(st.f_bavail * st.f_frsize, 1 << 40)
        self.assertGreater(st.f_favail, 1 << 20)

    # ---- consistency ----

    def test_unlinked_open_file_keeps_its_bytes(self):
        data = os.urandom(3 * MIB)
        self.write("gone", data)
        m = self.mnt(["cache.size=16M", "readahead.max=1M", "readahead.initial=1M"])
        p = os.path.join(m.mountpoint, "gone")
        with open(p, "rb") as f:
            head = f.read(MIB)
            os.unlink(p)
            self.assertFalse(os.path.exists(p))
            self.assertEqual(head + f.read(), data)
            self.assertTrue(self.exists("gone"), "deleted at the last close, not before")
        harness.wait_for(lambda: not self.exists("gone"), what="deferred delete")

    def test_other_clients_change_visible_after_ttl(self):
        self.write("shared", b"version 1")
        m = self.mnt()
        p = os.path.join(m.mountpoint, "shared")
        with open(p, "rb") as f:
            self.assertEqual(f.read(), b"version 1")
        self.write("shared", b"version 2, longer")
        time.sleep(1.5)  # metadata.attr_ttl=1s
        with open(p, "rb") as f:
            self.assertEqual(f.read(), b"version 2, longer")

    def test_reader_during_rewrite_never_mixes_versions(self):
        old, new = os.urandom(4 * MIB), os.urandom(4 * MIB)
        self.write("v", old)
        m = self.mnt(["cache.size=16M", "readahead.max=1M", "readahead.initial=1M"])
        p = os.path.join(m.mountpoint, "v")
        r = os.open(p, os.O_RDONLY)
        first = os.pread(r, MIB, 0)
        with open(p, "wb") as w:  # another writer replaces the object
            w.write(new)
        got, stale = bytearray(first), False
        try:
            for off in range(MIB, 4 * MIB, MIB):
                got += os.pread(r, MIB, off)
        except OSError as e:
            self.assertEqual(e.errno, errno.ESTALE)
            stale = True
        os.close(r)
        if not stale:
            self.assertEqual(bytes(got), old[:len(got)], "an open file saw another version")
        with open(p, "rb") as f:
            self.assertEqual(f.read(), new)

    def test_parallel_writers(self):
        m = self.mnt()
        blobs = {f"w{i}": os.urandom(PART + i * 100000) for i in range(6)}
        errors = []

        def writer(name, data):
            try:
                with open(os.path.join(m.mountpoint, name), "wb") as f:
                    for i in range(0, len(data), 256 * 1024):
                        f.write(data[i:i + 256 * 1024])
            except OSError as e:
                errors.append((name, e))

        threads = [threading.Thread(target=writer, args=kv) for kv in blobs.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for k, v in blobs.items():
            self.assertEqual(self.stored(k), v)

    # ---- bad input ----

    def test_file_size_limit(self):
        m = self.mnt(["write.max_file_size=1M"])
        with self.assertRaises(OSError) as e:
            with open(os.path.join(m.mountpoint, "huge"), "wb") as f:
                f.write(b"x" * (MIB + 1))
        self.assertEqual(e.exception.errno, errno.EFBIG)

    def test_full_staging_area(self):
        data = os.urandom(4 * MIB)
        self.write("keep", data)
        m = self.mnt(["write.staging_max=1M"])
        p = os.path.join(m.mountpoint, "keep")
        fd = os.open(p, os.O_WRONLY)
        accepted = 0
        with self.assertRaises(OSError) as e:
            while True:
                accepted += os.pwrite(fd, b"\xee" * (256 * 1024), accepted)
        self.assertEqual(e.exception.errno, errno.ENOSPC)
        self.assertLessEqual(accepted, MIB)
        try:
            os.close(fd)  # publishing needs the rest of the file staged: ENOSPC again
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        edited = b"\xee" * accepted + data[accepted:]
        self.assertIn(self.stored("keep"), (data, edited), "a refused write corrupts nothing")
        self.assertEqual(os.listdir(self.staging), [], "staging files are anonymous; no journal at rest")

    def test_upload_that_vanishes_on_the_server_is_sent_again(self):
        m = self.mnt()
        fd = os.open(os.path.join(m.mountpoint, "doomed"), os.O_WRONLY | os.O_CREAT)
        os.write(fd, os.urandom(2 * PART))
        harness.wait_for(lambda: len(self.uploads()) == 1, what="a multipart upload")
        # The upload vanishes on the server (aborted behind our back): the
        # next part is answered NoSuchUpload.
        for u in self.uploads():
            subprocess.run(["rm", "-rf", os.path.join(self.root, ".s3rdma-multipart", u)], check=True)
        tail = os.urandom(3 * PART)
        os.write(fd, tail)
        os.close(fd)  # every byte is still staged: the commit starts over
        self.assertEqual(len(self.stored("doomed")), 5 * PART)
        self.assertTrue(self.stored("doomed").endswith(tail))
        self.assertIn("the upload vanished on the server", m.log_text())

    def test_subprocess_closing_an_inherited_descriptor_publishes_nothing(self):
        m = self.mnt()
        with open(os.path.join(m.mountpoint, "ckpt"), "wb") as f:
            f.write(os.urandom(2 * PART))
            os.set_inheritable(f.fileno(), True)
            subprocess.run(["true"], close_fds=False, check=True)  # the child closes its copy
            self.assertFalse(self.exists("ckpt"))
            f.write(b"end")
        self.assertTrue(self.stored("ckpt").endswith(b"end"))

    def test_ls_l_of_what_a_mount_wrote_costs_the_listing_and_one_record_get(self):
        m = self.mnt()
        d = os.path.join(m.mountpoint, "recs")
        os.mkdir(d)
        want = {}
        for i in range(40):
            name = f"f{i:02d}"
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"x" * i)
            mode = 0o600 | (i % 8) << 3
            os.chmod(os.path.join(d, name), mode)
            want[name] = stat.S_IFREG | mode
        os.chown(os.path.join(d, "f02"), 1234, 5678)
        os.symlink("f01", os.path.join(d, "link"))
        os.mkfifo(os.path.join(d, "fifo"), 0o640)
        want["fifo"] = stat.S_IFIFO | 0o640
        m.stop()  # an unmount writes what is pending
        self.write("recs/foreign", b"by another tool")
        m = self.mnt(name="again")
        d = os.path.join(m.mountpoint, "recs")
        self.assertTrue(os.path.isdir(d))
        def object_gets():  # GETs but the LISTs
            with open(self.srv.log, errors="replace") as f:
                return sum(1 for line in f if " DEBUG GET " in line and "list-type=" not in line)
        heads, gets = self.srv.requests("HEAD"), object_gets()
        out = subprocess.run(["ls", "-l", d], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.srv.requests("HEAD"), heads + 1, "no HEAD per file: one for the "
                         "file nobody vouches for, to learn if the directory carries x-amz-meta-*")
        self.assertEqual(object_gets() - gets, 1, "one GET: the directory's record")
        self.assertIn("link -> f01", out.stdout)
        self.assertIn("1234 5678", out.stdout)
        for name, mode in want.items():
            self.assertEqual(os.lstat(os.path.join(d, name)).st_mode, mode, name)
        self.assertEqual(os.readlink(os.path.join(d, "link")), "f01")
        self.assertEqual(os.lstat(os.path.join(d, "f02")).st_uid, 1234)
        self.assertEqual(os.lstat(os.path.join(d, "foreign")).st_mode, stat.S_IFREG | 0o644,
                         "nobody vouches for another tool's file: the mount's default")
        self.assertEqual(self.srv.requests("HEAD"), heads + 1, "stats answered from the listing")
        self.assertEqual(object_gets() - gets, 1, "and the symlink's target came with it")

    def test_read_only_mount(self):
        m = self.mnt(["write.enabled=false"])
        with self.assertRaises(OSError) as e:
            open(os.path.join(m.mountpoint, "nope"), "wb")
        self.assertEqual(e.exception.errno, errno.EROFS)


class CrashTest(harness.MountTestCase):
    def test_kill_during_upload_leaves_no_partial_object(self):
        srv = self.server()
        opts = ["cache.size=32M", f"write.part_size={PART}", f"write.buffer_memory={4 * PART}",
                f"write.staging_dir={os.path.join(self.tmp, 'st')}"]
        m = self.mount(srv, options=opts)
        saved = os.urandom(PART + 17)
        with open(os.path.join(m.mountpoint, "saved"), "wb") as f:
            f.write(saved)
        synced = os.path.join(m.mountpoint, "synced")
        sf = open(synced, "wb")
        sf.write(b"fsynced bytes")
        sf.flush()
        os.fsync(sf.fileno())
        fd = os.open(os.path.join(m.mountpoint, "partial"), os.O_WRONLY | os.O_CREAT)
        os.write(fd, os.urandom(3 * PART))
        d = os.path.join(self.root, ".s3rdma-multipart")
        harness.wait_for(lambda: open_uploads(d), what="upload in progress")
        os.kill(m.daemon_pid(), signal.SIGKILL)
        try:
            os.close(fd)
        except OSError:
            pass
        try:
            sf.close()
        except OSError:
            pass
        m.stop()
        bucket = os.path.join(self.root, "bucket")
        self.assertFalse(os.path.exists(os.path.join(bucket, "partial")))
        with open(os.path.join(bucket, "saved"), "rb") as f:
            self.assertEqual(f.read(), saved)
        with open(os.path.join(bucket, "synced"), "rb") as f:
            self.assertEqual(f.read(), b"fsynced bytes")
        self.assertEqual(len(open_uploads(d)), 1, "the killed mount's upload is still there")
        m2 = self.mount(srv, name="again", options=opts)
        self.assertEqual(sorted(os.listdir(m2.mountpoint)), ["saved", "synced"])
        self.assertEqual(open_uploads(d), [], "the next mount aborted what the killed one left")
        self.assertIn("aborted 1 multipart upload(s)", m2.log_text())

    def test_next_mount_leaves_another_live_mounts_uploads_alone(self):
        srv = self.server()
        opts = ["cache.size=32M", f"write.part_size={PART}", f"write.buffer_memory={4 * PART}",
                f"write.staging_dir={os.path.join(self.tmp, 'st')}"]
        m = self.mount(srv, options=opts)
        fd = os.open(os.path.join(m.mountpoint, "live"), os.O_WRONLY | os.O_CREAT)
        os.write(fd, os.urandom(3 * PART))
        d = os.path.join(self.root, ".s3rdma-multipart")
        harness.wait_for(lambda: open_uploads(d), what="upload in progress")
        m2 = self.mount(srv, name="second", options=opts)  # same bucket, same staging dir
        self.assertEqual(len(open_uploads(d)), 1, "a live mount's upload is not a leftover")
        os.write(fd, b"end")
        os.close(fd)
        self.assertTrue(os.path.exists(os.path.join(m2.mountpoint, "live")))


if __name__ == "__main__":
    unittest.main()
