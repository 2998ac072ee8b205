"""Read-only mount over HTTP against the reference server: content, sizes,
trees, attributes, concurrency. Byte-exact checks throughout."""
import hashlib
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

BLOCK = 1 << 20


def digest(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


class ReadTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server()

    def test_sizes_around_block_boundaries(self):
        sizes = [0, 1, 4095, 4096, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5, 8 * BLOCK + 7]
        for s in sizes:
            self.write(f"sizes/f{s}", os.urandom(s))
        m = self.mount(self.srv, options=["cache.size=64M"])
        for s in sizes:
            with self.subTest(size=s):
                p = os.path.join(m.mountpoint, f"sizes/f{s}")
                self.assertEqual(os.stat(p).st_size, s)
                self.assertEqual(digest(p), digest(os.path.join(self.root, "bucket", f"sizes/f{s}")))
                # odd-sized reads at odd offsets
                with open(p, "rb") as f, open(os.path.join(self.root, "bucket", f"sizes/f{s}"), "rb") as g:
                    for off in (0, 1, s // 2, max(0, s - 3)):
                        f.seek(off)
                        g.seek(off)
                        self.assertEqual(f.read(7777), g.read(7777))

    def test_multi_gib_sparse_file(self):
        # 3 GiB, mostly holes, with stamped 4 KiB regions that name their offset:
        # an off-by-anything read shows up in cmp.
        size = 3 << 30
        path = os.path.join(self.root, "bucket", "big/sparse.bin")
        os.makedirs(os.path.dirname(path))
        with open(path, "wb") as f:
            f.truncate(size)
            for off in list(range(0, size, 97 << 20)) + [size - 4096, (1 << 30) - 100, (2 << 30) + BLOCK - 1]:
                f.seek(off)
                f.write((b"%016x" % off) * 256)
        m = self.mount(self.srv, options=["cache.size=256M", "readahead.max=64M"])
        r = subprocess.run(["cmp", path, os.path.join(m.mountpoint, "big/sparse.bin")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_many_small_files_and_deep_tree(self):
        for i in range(1500):
            self.write(f"small/{i:05d}.txt", b"file %d\n" % i * (i % 7 + 1))
        deep = "/".join(f"d{i}" for i in range(30))
        self.write(f"{deep}/leaf.txt", b"deep leaf")
        m = self.mount(self.srv)
        names = sorted(os.listdir(os.path.join(m.mountpoint, "small")))
        self.assertEqual(len(names), 1500)
        for i in range(0, 1500, 7):
            with open(os.path.join(m.mountpoint, "small", f"{i:05d}.txt"), "rb") as f:
                self.assertEqual(f.read(), b"file %d\n" % i * (i % 7 + 1))
        with open(os.path.join(m.mountpoint, deep, "leaf.txt"), "rb") as f:
            self.assertEqual(f.read(), b"deep leaf")
        found = [r for r, _, fs in os.walk(m.mountpoint) if "leaf.txt" in fs]
        self.assertEqual(len(found), 1)

    def test_attributes_come_from_the_listing(self):
        for i in range(50):
            self.write(f"attrs/{i}", b"x" * i)
        os.utime(os.path.join(self.root, "bucket", "attrs/7"), (1_600_000_000, 1_600_000_000))
        # Without object attributes (x-amz-meta-*, a HEAD per file) LIST is enough.
        m = self.mount(self.srv, options=["metadata.object_attributes=false", "fuse.file_mode=0444"])
        self.assertTrue(os.path.isdir(os.path.join(m.mountpoint, "attrs")))  # one lookup of the directory
        heads = self.srv.requests("HEAD")
        out = subprocess.run(["ls", "-l", os.path.join(m.mountpoint, "attrs")], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0)
        st = os.stat(os.path.join(m.mountpoint, "attrs/7"))
        self.assertEqual(st.st_size, 7)
        self.assertEqual(int(st.st_mtime), 1_600_000_000)
        self.assertEqual(st.st_mode & 0o777, 0o444)
        self.assertGreater(self.srv.requests("GET"), 0, "the access log works")
        self.assertEqual(self.srv.requests("HEAD"), heads, "ls -l after readdirplus needs no HEAD per file")

    def test_prefix_mount(self):
        self.write("a/b/c/inside.txt", b"in")
        self.write("a/outside.txt", b"out")
        m = self.mount(self.srv, source="bucket:/a/b")
        self.assertEqual(sorted(os.listdir(m.mountpoint)), ["c"])
        with open(os.path.join(m.mountpoint, "c/inside.txt"), "rb") as f:
            self.assertEqual(f.read(), b"in")

    def test_directory_markers_and_empty_dirs(self):
        os.makedirs(os.path.join(self.root, "bucket", "empty/dir"))
        m = self.mount(self.srv)
        self.assertTrue(os.path.isdir(os.path.join(m.mountpoint, "empty/dir")))
        self.assertEqual(os.listdir(os.path.join(m.mountpoint, "empty/dir")), [])

    def test_missing_names_and_read_only(self):
        self.write("ro.txt", b"data")
        m = self.mount(self.srv, options=["write.enabled=false"])
        self.assertFalse(os.path.exists(os.path.join(m.mountpoint, "nope")))
        with self.assertRaises(OSError) as e:
            open(os.path.join(m.mountpoint, "ro.txt"), "wb")
        self.assertEqual(e.exception.errno, 30)  # EROFS
        with self.assertRaises(OSError):
            os.mkdir(os.path.join(m.mountpoint, "newdir"))

    def test_concurrent_readers_of_one_file(self):
        data = os.urandom(48 * BLOCK + 333)
        self.write("shared.bin", data)
        m = self.mount(self.srv, options=["cache.size=32M", "readahead.max=8M", "fuse.direct_io=true"])
        path = os.path.join(m.mountpoint, "shared.bin")
        errors = []

        def reader(start, step):
            try:
                with open(path, "rb", buffering=0) as f:
                    off = start
                    while off < len(data):
                        f.seek(off)
                        got = f.read(step)
                        if got != data[off:off + step]:
                            errors.append(f"mismatch at {off}")
                            return
                        off += step
            except OSError as e:
                errors.append(str(e))

        threads = [threading.Thread(target=reader, args=(s, st)) for s, st in
                   [(0, 65536), (0, 1 << 20), (len(data) // 2, 131072), (12345, 777777), (0, 4096)]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def object_requests(self, prefix="/bucket/d/"):
        with open(self.srv.log, errors="replace") as f:
            return [line for line in f if " DEBUG " in line and prefix in line
                    and not line.rstrip().endswith(prefix)]  # the directory's own marker

    def test_a_sequential_direct_io_reader_gets_its_bytes_by_splice_past_the_cache(self):
        harness.allow_stream_pipes(self)
        data = os.urandom(24 * BLOCK + 12345)
        self.write("stream.bin", data)
        sock = os.path.join(self.tmp, "metrics.sock")
        m = self.mount(self.srv, options=["fuse.direct_io=true", f"metrics.listen=unix:{sock}"])
        path = os.path.join(m.mountpoint, "stream.bin")
        out = subprocess.run(["dd", f"if={path}", "bs=1M", "status=none"], capture_output=True,
                             check=True, timeout=60).stdout
        self.assertEqual(out, data)
        got = harness.metrics("unix:" + sock)
        self.assertEqual(got["s3rdmafs_streamed_reads_total"], 1, "one GET from the first byte to the last")
        self.assertEqual(got["s3rdmafs_streamed_bytes_total"], len(data), "every byte by splice")
        self.assertEqual(got["s3rdmafs_streamed_failures_total"], 0)
        self.assertEqual(got['s3rdmafs_s3_requests_total{op="get"}'], 1)
        self.assertEqual(got["s3rdmafs_cache_misses_total"], 0, "past the cache")
        # A reader that jumps around, and one with small reads, go through the cache: right bytes too.
        with open(path, "rb") as f:
            for off in (5 * BLOCK + 3, BLOCK, 20 * BLOCK, 24 * BLOCK):
                self.assertEqual(os.pread(f.fileno(), BLOCK, off), data[off:off + BLOCK], off)
        small = subprocess.run(["dd", f"if={path}", "bs=64K", "status=none"], capture_output=True,
                               check=True, timeout=60).stdout
        self.assertEqual(small, data)
        got = harness.metrics("unix:" + sock)
        self.assertEqual(got["s3rdmafs_streamed_reads_total"], 1)
        self.assertGreater(got["s3rdmafs_cache_misses_total"], 0)

    def test_a_listed_small_file_costs_one_request_from_lookup_to_last_byte(self):
        files = {f"s{i:02d}": os.urandom(4096 + 13 * i) for i in range(20)}
        files["big"] = os.urandom(3 * BLOCK)
        for name, data in files.items():
            self.write(f"d/{name}", data)
        # With a HEAD per listed file: the opt-in small_file_read makes it a GET.
        m = self.mount(self.srv, options=["metadata.small_file_read=64K", "metadata.listing=heads"])
        object_requests = self.object_requests
        self.assertEqual(sorted(os.listdir(os.path.join(m.mountpoint, "d"))), sorted(files))
        # The listing starts one attribute request per file in the background.
        harness.wait_for(lambda: len(object_requests()) >= len(files), 10, "attribute requests")
        time.sleep(0.3)
        after_listing = object_requests()
        self.assertEqual(len(after_listing), len(files), "".join(after_listing))
        for name, data in files.items():
            with open(os.path.join(m.mountpoint, "d", name), "rb") as f:
                self.assertEqual(f.read(), data, name)
        later = object_requests()[len(after_listing):]
        self.assertGreaterEqual(len(later), 1)
        self.assertTrue(all("GET /bucket/d/big" in line for line in later),
                        "only the big file's reads go out: " + "".join(later))

    def test_by_default_a_listed_foreign_small_file_costs_one_request_to_its_last_byte(self):
        files = {f"s{i:02d}": os.urandom(4096 + 13 * i) for i in range(20)}
        files["big"] = os.urandom(3 * BLOCK)
        for name, data in files.items():
            self.write(f"d/{name}", data)  # by another tool: no record, no x-amz-meta-*
        sock = os.path.join(self.tmp, "metrics.sock")
        m = self.mount(self.srv, options=["metadata.attr_ttl=1h", "metadata.entry_ttl=1h",
                                          f"metrics.listen=unix:{sock}"])
        d = os.path.join(m.mountpoint, "d")
        out = subprocess.run(["ls", "-l", d], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        listing = self.object_requests()
        record = self.object_requests("/bucket/.s3rdmafs-preserved/records/d/")
        self.assertEqual(len(record), 1, "the directory's record, asked once (there is none)")
        self.assertEqual(len(listing), 4, "a few HEADs learn that these files carry no "
                         "x-amz-meta-*; the rest show the listing's attributes:\n" + "".join(listing))
        sampled = {line.split("/bucket/d/")[1].split()[0] for line in listing}
        for name, data in files.items():
            with open(os.path.join(d, name), "rb") as f:
                self.assertEqual(f.read(), data, name)
        later = self.object_requests()[len(listing):]
        per_file = {}
        for line in later:
            name = line.split("/bucket/d/")[1].split()[0]
            per_file[name] = per_file.get(name, 0) + 1
        for name in files:
            if name != "big":
                self.assertEqual(per_file.get(name), 1,
                                 f"{name} (sampled: {name in sampled}): " + "".join(later))
        # The mount counts its requests by kind; the server saw the same.
        got = harness.metrics("unix:" + sock)
        kind = lambda op: got[f's3rdmafs_s3_requests_total{{op="{op}"}}']  # noqa: E731
        self.assertEqual(kind("head"), self.srv.requests("HEAD"))
        self.assertEqual(kind("get") + kind("list"), self.srv.requests("GET"))
        with open(self.srv.log, errors="replace") as f:
            lists = sum(1 for line in f if " DEBUG GET " in line and "list-type=" in line)
        self.assertEqual(kind("list"), lists)
        self.assertEqual(kind("put"), 0)

    def test_the_kernel_reads_ahead_as_far_as_fuse_read_ahead(self):
        def read_ahead_kb(m):
            st = os.stat(m.mountpoint)
            with open(f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb") as f:
                return int(f.read())
        self.assertEqual(read_ahead_kb(self.mount(self.srv)), 4096, "the default, 4 MiB")
        self.assertEqual(read_ahead_kb(self.mount(self.srv, name="m1",
                                                  options=["fuse.read_ahead=1M"])), 1024)
        self.assertEqual(read_ahead_kb(self.mount(self.srv, name="m0",
                                                  options=["fuse.read_ahead=0"])), 128,
                         "the kernel's own for FUSE")

    def test_warm_reread_is_served_without_refetch(self):
        data = os.urandom(16 * BLOCK)
        self.write("warm.bin", data)
        m = self.mount(self.srv)
        p = os.path.join(m.mountpoint, "warm.bin")
        with open(p, "rb") as f:
            self.assertEqual(f.read(), data)
        gets_before = self.srv.requests("GET")
        self.assertGreater(gets_before, 0)
        with open(p, "rb") as f:
            self.assertEqual(f.read(), data)
        gets_after = self.srv.requests("GET")
        self.assertEqual(gets_before, gets_after)


if __name__ == "__main__":
    unittest.main()
