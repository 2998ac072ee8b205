"""Bad input loses nothing and says why: wrong keys, unreachable endpoint,
missing bucket, malformed config, a server that dies mid-read."""
import errno
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import fault_proxy  # noqa: E402
import harness  # noqa: E402

BLOCK = 1 << 20


class ErrorTest(harness.MountTestCase):
    def test_wrong_keys_fail_the_mount_with_a_reason(self):
        srv = self.server()
        m = harness.Mount(os.path.join(self.tmp, "mnt"), os.path.join(self.tmp, "mnt.log"))
        self._mounts.append(m)
        r = m.start("bucket", srv.endpoint, check=False, secret_key="wrong-secret")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("refused our credentials", r.stderr)
        self.assertIn("SignatureDoesNotMatch", r.stderr)
        self.assertFalse(harness.is_mounted(m.mountpoint))

    def test_wrong_keys_at_runtime_give_eacces_and_a_log_line(self):
        srv = self.server()
        self.write("f.txt", b"x")
        m = self.mount(srv, options=["s3.startup_check=false"], access_key="UNKNOWNKEY")
        with self.assertRaises(OSError) as e:
            os.stat(os.path.join(m.mountpoint, "f.txt"))
        self.assertEqual(e.exception.errno, errno.EACCES)
        log = m.log_text()
        self.assertIn("permission denied by the server (check credentials)", log)
        self.assertIn("InvalidAccessKeyId", log)

    def test_unreachable_endpoint_fails_fast(self):
        m = harness.Mount(os.path.join(self.tmp, "mnt"), os.path.join(self.tmp, "mnt.log"))
        self._mounts.append(m)
        t0 = time.time()
        r = m.start("bucket", f"http://127.0.0.1:{harness.free_port()}", check=False,
                    options=["s3.max_retries=2", "s3.retry_base_delay=50ms"])
        self.assertNotEqual(r.returncode, 0)
        self.assertLess(time.time() - t0, 20)
        self.assertIn("cannot reach", r.stderr)
        self.assertFalse(harness.is_mounted(m.mountpoint))

    def test_silent_endpoint_fails_within_the_startup_timeout(self):
        import socket
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts (the kernel does), never answers
        self.addCleanup(listener.close)
        m = harness.Mount(os.path.join(self.tmp, "mnt"), os.path.join(self.tmp, "mnt.log"))
        self._mounts.append(m)
        t = time.time()
        r = m.start("bucket", f"http://127.0.0.1:{listener.getsockname()[1]}", check=False,
                    options=["s3.startup_timeout=2s"])
        self.assertNotEqual(r.returncode, 0)
        self.assertLess(time.time() - t, 10)
        self.assertIn("s3.startup_timeout", r.stderr)
        self.assertIn(str(listener.getsockname()[1]), r.stderr)

    def test_bad_values_name_their_key_and_never_abort(self):
        cases = {"rdma.endpoint=host:abc": "rdma.endpoint", "rdma.endpoint=host:99999": "rdma.endpoint",
                 "cache.wait_timeout=99999999999999999999s": "cache.wait_timeout",
                 "cache.wait_timeout=999999999999999s": "cache.wait_timeout"}
        for option, key in cases.items():
            with self.subTest(option=option):
                m = harness.Mount(os.path.join(self.tmp, "mnt"), os.path.join(self.tmp, "mnt.log"))
                r = m.start("bucket", "http://127.0.0.1:1", options=[option], check=False, timeout=10)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(key, r.stderr)

    def test_options_before_the_positionals(self):
        srv = self.server()
        self.write("f.txt", b"x")
        mnt = os.path.join(self.tmp, "mnt")
        os.makedirs(mnt)
        m = harness.Mount(mnt, os.path.join(self.tmp, "mnt.log"))
        self._mounts.append(m)
        env = dict(os.environ, AWS_ACCESS_KEY_ID=harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=harness.SECRET_KEY)
        r = subprocess.run([harness.FS_BIN, "-o", f"s3.endpoint={srv.endpoint}", "-o", "cache.size=32M",
                            "bucket", mnt, "--log-file", m.log], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(mnt), ["f.txt"])

    def test_a_relative_mount_point_is_where_the_caller_is(self):
        srv = self.server()
        self.write("f.txt", b"x")
        os.makedirs(os.path.join(self.tmp, "rel"))
        m = harness.Mount(os.path.join(self.tmp, "rel"), os.path.join(self.tmp, "mnt.log"))
        self._mounts.append(m)
        env = dict(os.environ, AWS_ACCESS_KEY_ID=harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=harness.SECRET_KEY)
        r = subprocess.run([harness.FS_BIN, "bucket", "rel", "-o", f"s3.endpoint={srv.endpoint}",
                            "--log-file", m.log], env=env, cwd=self.tmp, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(harness.is_mounted(m.mountpoint), "mounted on ./rel, not on /rel")
        self.assertEqual(os.listdir(m.mountpoint), ["f.txt"])

    def test_missing_bucket_is_named(self):
        srv = self.server()
        m = harness.Mount(os.path.join(self.tmp, "mnt"), os.path.join(self.tmp, "mnt.log"))
        self._mounts.append(m)
        r = m.start("no-such-bucket", srv.endpoint, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bucket 'no-such-bucket' does not exist", r.stderr)

    def test_bad_mount_points_are_named(self):
        srv = self.server()
        env = dict(os.environ, AWS_ACCESS_KEY_ID=harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=harness.SECRET_KEY)

        def run(mountpoint):
            return subprocess.run([harness.FS_BIN, "bucket", mountpoint, "-o", f"s3.endpoint={srv.endpoint}"],
                                  env=env, capture_output=True, text=True, timeout=60)

        r = run(os.path.join(self.tmp, "nowhere"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("does not exist", r.stderr)
        a_file = os.path.join(self.tmp, "file")
        open(a_file, "w").close()
        r = run(a_file)
        self.assertEqual(r.returncode, 2)
        self.assertIn("is not a directory", r.stderr)
        m = self.mount(srv, options=["cache.size=16M"])
        r = run(m.mountpoint)
        self.assertEqual(r.returncode, 2)
        self.assertIn("is busy", r.stderr)
        os.kill(m.daemon_pid(), 9)  # a dead FUSE mount: the usual leftover of a crash
        harness.wait_for(lambda: "dead FUSE mount" in run(m.mountpoint).stderr, what="dead mount named")
        subprocess.run(["fusermount3", "-u", m.mountpoint], check=True)

    def test_logs_carry_journal_priorities_under_systemd(self):
        err = os.path.join(self.tmp, "stderr")
        mnt = os.path.join(self.tmp, "jmnt")
        os.makedirs(mnt)
        with open(err, "wb") as f:
            st = os.fstat(f.fileno())
            env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
                       AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
            subprocess.run([harness.FS_BIN, "-f", "bucket", mnt, "-o",
                            f"s3.endpoint=http://127.0.0.1:{harness.free_port()},s3.max_retries=0"],
                           env=env, stdout=subprocess.DEVNULL, stderr=f, timeout=60)
        lines = open(err).read().splitlines()
        self.assertTrue(any(l.startswith("<6>INFO ") for l in lines), lines)
        self.assertTrue(any(l.startswith("<3>ERROR ") and "cannot reach" in l for l in lines), lines)

    def test_malformed_config_lists_every_error(self):
        cfg = os.path.join(self.tmp, "bad.toml")
        with open(cfg, "w") as f:
            f.write('[s3]\nendpiont = "http://x"\n[cache]\nsize = "lots"\nblock_size = "3K"\n')
        m = harness.Mount(os.path.join(self.tmp, "mnt"), os.path.join(self.tmp, "mnt.log"))
        r = m.start("bucket", "http://127.0.0.1:1", config=cfg, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("s3.endpiont: unknown key", r.stderr)
        self.assertIn("cache.size", r.stderr)
        self.assertIn("bad.toml", r.stderr)
        r = m.start("bucket", "http://127.0.0.1:1", options=["cache.block_size=3K"], check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cache.block_size: must be a power of two", r.stderr)

    def test_cache_larger_than_memory_is_refused(self):
        srv = self.server()
        m = harness.Mount(os.path.join(self.tmp, "mnt"), os.path.join(self.tmp, "mnt.log"))
        self._mounts.append(m)
        r = m.start("bucket", srv.endpoint, options=["cache.size=64T"], check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("lower cache.size", r.stderr)

    def test_server_gone_mid_read_gives_eio_then_recovers(self):
        srv = self.server()
        data = os.urandom(64 * BLOCK)
        self.write("big.bin", data)
        m = self.mount(srv, options=["s3.max_retries=2", "s3.retry_base_delay=50ms", "cache.size=32M",
                                     "readahead.max=4M", "metadata.attr_ttl=1h"])
        path = os.path.join(m.mountpoint, "big.bin")
        with open(path, "rb", buffering=0) as f:
            self.assertEqual(f.read(BLOCK), data[:BLOCK])
            port = srv.port
            srv.stop()
            failed_with = None
            off = BLOCK
            t0 = time.time()
            while off < len(data):
                try:
                    chunk = f.read(BLOCK)
                except OSError as e:
                    failed_with = e.errno
                    break
                self.assertEqual(chunk, data[off:off + len(chunk)], "never wrong bytes")
                off += len(chunk)
            self.assertEqual(failed_with, errno.EIO)
            self.assertLess(time.time() - t0, 30)
        self.assertTrue(harness.is_mounted(m.mountpoint), "daemon survived")
        srv.port = port
        srv.start()
        with open(path, "rb") as f:
            f.seek(32 * BLOCK)
            self.assertEqual(f.read(BLOCK), data[32 * BLOCK:33 * BLOCK], "recovered once the server returned")

    def test_server_killed_during_streaming_transfers(self):
        srv = self.server()
        data = os.urandom(96 * BLOCK)
        self.write("stream.bin", data)
        m = self.mount(srv, options=["s3.max_retries=1", "s3.retry_base_delay=50ms", "fuse.direct_io=true"])
        errors, wrong = [], []

        t = threading.Thread(target=harness.checked_reader(os.path.join(m.mountpoint, "stream.bin"), data,
                                                           1 << 20, wrong, errors))
        t.start()
        time.sleep(0.05)
        srv.stop(sig=9)
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertEqual(wrong, [], "never wrong bytes")
        self.assertTrue(harness.is_mounted(m.mountpoint))

    def test_a_streamed_read_cut_mid_body_goes_on_through_the_cache(self):
        harness.allow_stream_pipes(self)
        srv = self.server()
        proxy = fault_proxy.FaultProxy(srv.port)
        self.addCleanup(proxy.stop)
        data = os.urandom(16 * BLOCK + 999)
        self.write("cut.bin", data)
        # The first GET of the file is the stream's (from byte 0 to the end): cut inside its 6th MiB.
        cut = proxy.add("truncate", "GET", r"^/bucket/cut\.bin$", times=1, keep=5 * BLOCK + 777)
        sock = os.path.join(self.tmp, "metrics.sock")
        m = self.mount(proxy.endpoint, options=["fuse.direct_io=true", f"metrics.listen=unix:{sock}"])
        path = os.path.join(m.mountpoint, "cut.bin")
        out = subprocess.run(["dd", f"if={path}", "bs=1M", "status=none"], capture_output=True,
                             check=True, timeout=60).stdout
        self.assertEqual(cut.hits, 1, "the cut happened")
        self.assertEqual(out, data, "every byte right, none lost at the cut")
        got = harness.metrics("unix:" + sock)
        self.assertEqual(got["s3rdmafs_streamed_failures_total"], 1)
        self.assertEqual(got["s3rdmafs_streamed_bytes_total"], 5 * BLOCK, "replied whole reads only")
        self.assertGreaterEqual(proxy.count("GET", r"^/bucket/cut\.bin$"), 2, "the rest came by the cache")
        self.assertIn("reads through the cache", m.log_text())


if __name__ == "__main__":
    unittest.main()
