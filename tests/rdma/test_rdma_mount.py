"""The RDMA data path end to end on real verbs (Soft-RoCE in the guest): the
reference server RDMA-WRITEs object bytes straight into the mount's cache
arena. Without an RDMA device this skips and says so; in the guest
(S3RDMAFS_REQUIRE_RDMA=1) a missing device is a failure."""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

BLOCK = 1 << 20
RXE_IP = harness.RXE_IP


class RdmaMountTest(harness.MountTestCase):
    def setUp(self):
        harness.require_rdma(self)
        super().setUp()

    def test_reads_move_by_rdma_write(self):
        sizes = [0, 1, 4095, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5]
        data = {s: os.urandom(s) for s in sizes}
        for s, d in data.items():
            self.write(f"r/f{s}", d)
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        stats = os.path.join(self.tmp, "stats.prom")
        m = self.mount(srv, options=[f"rdma.endpoint={RXE_IP}:{port}", "rdma.required=true", "cache.size=64M",
                                     "log.level=debug", f"log.stats_file={stats}"])
        for s, d in data.items():
            with open(os.path.join(m.mountpoint, f"r/f{s}"), "rb") as f:
                self.assertEqual(f.read(), d, f"size {s}")
        # What an operator sees: every data byte by RDMA, none by HTTP fallback.
        want = 's3rdmafs_data_bytes_total{transport="rdma"} %d' % sum(sizes)
        harness.wait_for(lambda: want in open(stats).read(), 5, "the stats file to show the RDMA bytes")
        with open(stats) as f:
            text = f.read()
        self.assertIn('s3rdmafs_data_bytes_total{transport="http_fallback"} 0', text)
        self.assertIn("s3rdmafs_rdma_connected 1", text)
        m.stop()
        with open(srv.log, errors="replace") as f:
            log = f.read()
        moved = sum(int(line.split(": ")[-1].split()[0]) for line in log.splitlines() if "RDMA GET" in line and "bytes by RDMA WRITE" in line)
        self.assertEqual(moved, sum(sizes), "every byte moved by RDMA WRITE")
        self.assertIn("transport totals: %d bytes by RDMA, 0 by HTTP" % sum(sizes), m.log_text())

    def test_a_streaming_read_names_runs_of_blocks_with_one_token(self):
        # A job's blocks that lie next to each other in the arena share one
        # token, so one RDMA GET covers a read-ahead request (up to
        # readahead.max_request, 8 MiB) instead of one GET per 1 MiB block.
        # (Placement after churn, which keeps them adjacent, is the unit test
        # BlockCache.ConsecutiveBlocksOfAnObjectLieNextToEachOther.)
        size = 48 * BLOCK
        data = os.urandom(size)
        self.write("stream.bin", data)
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        stats = os.path.join(self.tmp, "stats.prom")
        m = self.rdma_mount(srv, port, "rdma.required=true", "cache.size=128M", "fuse.direct_io=true",
                            f"log.stats_file={stats}")
        with open(os.path.join(m.mountpoint, "stream.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        harness.wait_for(lambda: self.stat(stats, 's3rdmafs_data_bytes_total{transport="rdma"}') == size,
                         10, "every byte by RDMA")
        requests = self.stat(stats, 's3rdmafs_s3_requests_total{op="rdma_get"}')
        print(f"\n48 MiB streamed: {requests} RDMA GETs (one per block would be 48)")
        self.assertLessEqual(requests, 14, "under a third of one per block (8 MiB windows, after the ramp)")
        with open(srv.log, errors="replace") as f:
            sizes = [int(line.split(": ")[-1].split()[0]) for line in f if "RDMA GET" in line and "stream.bin" in line]
        self.assertIn(8 * BLOCK, sizes, "whole 8 MiB windows")

    def test_rails_share_the_requests_and_every_window_closes(self):
        # rdma.connections = 2: two RC connections (QPs) to the one listener,
        # taken in turn. Each request binds its own memory window and closes
        # it when the reply comes, and none is fenced or retired.
        size = 32 * BLOCK
        data = os.urandom(size)
        self.write("rails.bin", data)
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        stats = os.path.join(self.tmp, "stats.prom")
        m = self.rdma_mount(srv, port, "rdma.required=true", "rdma.connections=2", "cache.size=64M",
                            "readahead.max_request=2M", f"log.stats_file={stats}")
        with open(os.path.join(m.mountpoint, "rails.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        harness.wait_for(lambda: self.stat(stats, 's3rdmafs_data_bytes_total{transport="rdma"}') == size,
                         10, "every byte by RDMA")
        self.assertEqual(self.stat(stats, "s3rdmafs_rdma_connected"), 2)
        self.assertEqual(self.stat(stats, "s3rdmafs_rdma_windows_fenced_total"), 0)
        self.assertEqual(self.stat(stats, "s3rdmafs_rdma_connections_retired_total"), 0)
        with open(srv.log, errors="replace") as f:
            used = {line.rsplit(" ", 1)[-1].strip() for line in f
                    if "RDMA GET" in line and "rails.bin" in line and "on connection" in line}
        self.assertEqual(len(used), 2, f"both connections carried RDMA WRITEs: {used}")

    def test_writes_move_by_rdma_read(self):
        part = 5 * BLOCK
        sizes = [1, 4095, BLOCK, part + 1, 2 * part + 3]  # single PUTs and multipart uploads
        data = {s: os.urandom(s) for s in sizes}
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        stats = os.path.join(self.tmp, "stats.prom")
        m = self.mount(srv, options=[f"rdma.endpoint={RXE_IP}:{port}", "rdma.required=true", "cache.size=32M",
                                     f"write.part_size={part}", f"write.buffer_memory={4 * part}",
                                     f"write.staging_dir={os.path.join(self.tmp, 'staging')}",
                                     "log.level=debug", f"log.stats_file={stats}"])
        for s, d in data.items():
            with open(os.path.join(m.mountpoint, f"w{s}"), "wb") as f:
                f.write(d)
        for s, d in data.items():
            with open(os.path.join(self.root, "bucket", f"w{s}"), "rb") as f:
                self.assertEqual(f.read(), d, f"size {s}")
        # The server RDMA-READ every upload body (a PUT or a part) but the
        # tiny ones: under 4 KiB a body is cheaper than a token.
        bodies = []
        for s in sizes:
            bodies += [min(part, s - o) for o in range(0, s, part)] if s > part else [s]
        by_rdma = sum(b for b in bodies if b >= 4096)
        want = 's3rdmafs_upload_bytes_total{transport="rdma"} %d' % by_rdma
        try:
            harness.wait_for(lambda: want in open(stats).read(), 5, "the stats file to show the RDMA uploads")
        except AssertionError:
            self.fail(f"want {want}; stats:\n{open(stats).read()}\nlog:\n{m.log_text()[-3000:]}")
        self.assertIn('s3rdmafs_upload_bytes_total{transport="http_fallback"} %d' % (sum(sizes) - by_rdma),
                      open(stats).read())
        m.stop()
        with open(srv.log, errors="replace") as f:
            puts = [line for line in f if "RDMA PUT" in line and "bytes by RDMA READ" in line]
        read = sum(int(line.split(": ")[-1].split()[0]) for line in puts)
        self.assertEqual(read, by_rdma)
        # Every RDMA upload carried a CRC-32C that the server checked before storing.
        self.assertEqual([p for p in puts if "checked against x-amz-checksum-crc32c" not in p], [])

    def rdma_mount(self, srv, port, *options):
        return self.mount(srv, options=[f"rdma.endpoint={RXE_IP}:{port}", "cache.size=64M", "log.level=debug",
                                        *options])

    def test_concurrent_readers(self):
        data = os.urandom(6 * BLOCK + 77)
        self.write("c.bin", data)
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        m = self.rdma_mount(srv, port, "rdma.required=true", "fuse.direct_io=true")
        errors = []

        def reader(start, step):
            with open(os.path.join(m.mountpoint, "c.bin"), "rb", buffering=0) as f:
                off = start
                while off < len(data):
                    f.seek(off)
                    if f.read(step) != data[off:off + step]:
                        errors.append(off)
                        return
                    off += step

        threads = [threading.Thread(target=reader, args=a) for a in [(0, 65536), (3 * BLOCK, 131072), (1, BLOCK)]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        m.stop()
        self.assertIn("0 by HTTP", m.log_text())

    def stat(self, stats, name):
        for line in open(stats).read().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[-1]))
        return None

    def restart_and_resume(self, sig):
        # The mount goes on over HTTP while the server is away, notices the
        # connection ended (rdma_cm DISCONNECTED, or 501 RDMAConnectionUnknown
        # from the new server), and reconnects in the background: RDMA resumes
        # without a remount.
        self.write("d.bin", os.urandom(40 * BLOCK))  # well past what the first read prefetches
        with open(os.path.join(self.root, "bucket", "d.bin"), "rb") as f:
            data = f.read()
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        stats = os.path.join(self.tmp, "stats.prom")
        m = self.rdma_mount(srv, port, "metadata.attr_ttl=1h", "rdma.reconnect_min=200ms",
                            "rdma.reconnect_max=1s", "fuse.direct_io=true", f"log.stats_file={stats}")
        with open(os.path.join(m.mountpoint, "d.bin"), "rb", buffering=0) as f:
            self.assertEqual(f.read(BLOCK // 2), data[:BLOCK // 2])
        harness.wait_for(lambda: (self.stat(stats, 's3rdmafs_data_bytes_total{transport="rdma"}') or 0) > 0,
                         10, "RDMA bytes before the restart")
        first_log = srv.log
        http_port = srv.port
        srv.stop(sig=sig)
        srv.port = http_port
        srv.log = os.path.join(self.tmp, "server-after-restart.log")
        srv.start()
        # A read in between: whether the end was noticed yet or not, the bytes are right.
        with open(os.path.join(m.mountpoint, "d.bin"), "rb", buffering=0) as f:
            f.seek(20 * BLOCK)
            self.assertEqual(f.read(BLOCK // 2), data[20 * BLOCK:20 * BLOCK + BLOCK // 2])
        harness.wait_for(lambda: (self.stat(stats, "s3rdmafs_rdma_reconnects_total") or 0) >= 1, 30,
                         "the background reconnect")
        harness.wait_for(lambda: self.stat(stats, "s3rdmafs_rdma_connected") == 1, 10, "a live connection")
        with open(os.path.join(m.mountpoint, "d.bin"), "rb", buffering=0) as f:
            self.assertEqual(f.read(), data)
        m.stop()
        with open(srv.log, errors="replace") as f:
            after = sum(int(line.split(": ")[-1].split()[0]) for line in f
                        if "RDMA GET" in line and "bytes by RDMA WRITE" in line)
        self.assertGreaterEqual(after, 8 * BLOCK, "the restarted server moved the rest by RDMA WRITE")
        log = m.log_text()
        self.assertIn("RDMA connection to", log)
        self.assertNotIn("declined by the server", log, "a restart is not a decline: no back-off")
        self.assertNotEqual(first_log, srv.log)

    def test_restarted_server_is_reconnected_and_rdma_resumes(self):
        self.restart_and_resume(signal.SIGTERM)

    def test_killed_server_is_reconnected_once_back_and_rdma_resumes(self):
        self.restart_and_resume(signal.SIGKILL)

    def test_each_real_servers_decline_costs_no_second_transfer(self):
        # docs/PROTOCOL.md: Ceph RGW with RDMA off answers with the body and
        # no x-amz-rdma-reply (kept, not fetched again; an RDMA PUT's empty
        # body is refused by its CRC-32C, so nothing is replaced); AIStor
        # answers 501; RustFS answers 400 InvalidRequest. The server imitates each.
        data = os.urandom(6 * BLOCK + 5)
        self.write("decl.bin", data)
        written = os.urandom(2 * BLOCK + 9)
        for mode in ("ceph", "aistor", "rustfs"):
            with self.subTest(mode=mode):
                self.write(f"out-{mode}", b"the saved version")
                port = harness.free_port()
                srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}", "--rdma-decline", mode])
                stats = os.path.join(self.tmp, f"stats-{mode}.prom")
                m = self.mount(srv, name=f"mnt-{mode}", options=[
                    f"rdma.endpoint={RXE_IP}:{port}", "rdma.required=true", "cache.size=64M",
                    "log.level=debug", f"log.stats_file={stats}", "fuse.direct_io=true"])
                with open(os.path.join(m.mountpoint, "decl.bin"), "rb") as f:
                    self.assertEqual(f.read(), data)
                with open(os.path.join(m.mountpoint, f"out-{mode}"), "wb") as f:
                    f.write(written)
                with open(os.path.join(self.root, "bucket", f"out-{mode}"), "rb") as f:
                    self.assertEqual(f.read(), written)
                harness.wait_for(lambda: (self.stat(stats, 's3rdmafs_rdma_fallbacks_total{cause="declined"}') or 0) >= 1,
                                 10, "a decline in the stats")
                received = self.stat(stats, "s3rdmafs_http_bytes_received_total")
                self.assertLessEqual(received, len(data) + 256 * 1024,
                                     f"{mode}: {received} bytes over HTTP for {len(data)}: fetched twice")
                self.assertEqual(self.stat(stats, 's3rdmafs_data_bytes_total{transport="rdma"}'), 0)
                self.assertEqual(self.stat(stats, "s3rdmafs_rdma_connected"), 1, "a decline keeps the connection")
                m.stop()

    def test_server_killed_mid_transfer_never_gives_wrong_bytes(self):
        data = os.urandom(24 * BLOCK)
        self.write("k.bin", data)
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        m = self.rdma_mount(srv, port, "s3.max_retries=1", "s3.retry_base_delay=50ms", "fuse.direct_io=true")
        wrong, errors = [], []

        t = threading.Thread(target=harness.checked_reader(os.path.join(m.mountpoint, "k.bin"), data, BLOCK,
                                                           wrong, errors))
        t.start()
        time.sleep(0.3)
        srv.stop(sig=9)
        t.join(120)
        self.assertFalse(t.is_alive())
        self.assertEqual(wrong, [], "never wrong bytes")
        self.assertTrue(harness.is_mounted(m.mountpoint), "the daemon survived")

    def test_probe_checks_each_step(self):
        self.write("p.bin", os.urandom(3 * BLOCK + 11))
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        env = dict(os.environ, AWS_ACCESS_KEY_ID=harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=harness.SECRET_KEY)
        probe = os.path.join(harness.BUILD, "src", "s3rdmafs-probe")
        r = subprocess.run([probe, "check", "--endpoint", srv.endpoint, "--bucket", "bucket", "--rdma",
                            f"{RXE_IP}:{port}"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("http: OK", r.stdout)
        self.assertIn("rdma connect: OK", r.stdout)
        self.assertIn("identical to HTTP", r.stdout)
        r = subprocess.run([probe, "check", "--endpoint", srv.endpoint, "--bucket", "bucket", "--rdma",
                            f"{RXE_IP}:{harness.free_port()}"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("rdma connect: FAIL", r.stdout)
        r = subprocess.run([probe, "devices"], capture_output=True, text=True, timeout=30)
        self.assertIn("device rxe0", r.stdout)
        self.assertIn("dc not supported", r.stdout)

    def test_dc_on_a_device_without_dc_is_reported(self):
        # Soft-RoCE has no DC: the DC target path must say so, and fall back or fail as configured.
        self.write("y.bin", b"y" * 3000)
        srv = self.server()
        m = self.mount(srv, options=["rdma.transport=dc", "cache.size=64M"])
        with open(os.path.join(m.mountpoint, "y.bin"), "rb") as f:
            self.assertEqual(f.read(), b"y" * 3000)
        self.assertIn("no DC transport", m.log_text())
        req = harness.Mount(os.path.join(self.tmp, "dcreq"), os.path.join(self.tmp, "dcreq.log"))
        self._mounts.append(req)
        r = req.start("bucket", srv.endpoint, options=["rdma.transport=dc", "rdma.required=true", "cache.size=64M"],
                      check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no DC transport", r.stderr)

    def test_client_killed_mid_transfer_costs_the_server_nothing_but_that_request(self):
        data = os.urandom(32 * BLOCK)
        self.write("big.bin", data)
        port = harness.free_port()
        srv = self.server(extra=["--rdma-listen", f"{RXE_IP}:{port}"])
        m = self.rdma_mount(srv, port, "rdma.required=true", "fuse.direct_io=true")
        pid = m.daemon_pid()

        def reader():
            try:
                with open(os.path.join(m.mountpoint, "big.bin"), "rb", buffering=0) as f:
                    while f.read(BLOCK):
                        pass
            except OSError:
                pass  # the daemon is gone: ENOTCONN

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.3)
        os.kill(pid, 9)
        t.join(60)
        subprocess.run(["umount", "-l", m.mountpoint], capture_output=True)
        self.assertIsNone(srv.proc.poll(), "the server survived")
        m2 = self.mount(srv, name="again", options=[f"rdma.endpoint={RXE_IP}:{port}", "rdma.required=true",
                                                   "cache.size=64M"])
        with open(os.path.join(m2.mountpoint, "big.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        m2.stop()
        self.assertIn("0 by HTTP", m2.log_text())

    def test_no_rdma_listener_falls_back_loudly_or_fails_when_required(self):
        self.write("x.bin", b"x" * 5000)
        srv = self.server()
        port = harness.free_port()
        m = self.mount(srv, options=[f"rdma.endpoint={RXE_IP}:{port}", "cache.size=64M"])
        with open(os.path.join(m.mountpoint, "x.bin"), "rb") as f:
            self.assertEqual(f.read(), b"x" * 5000)
        self.assertIn("RDMA UNAVAILABLE", m.log_text())
        req = harness.Mount(os.path.join(self.tmp, "req"), os.path.join(self.tmp, "req.log"))
        self._mounts.append(req)
        r = req.start("bucket", srv.endpoint, options=[f"rdma.endpoint={RXE_IP}:{port}", "rdma.required=true", "cache.size=64M"],
                      check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("RDMA is required", r.stderr)


if __name__ == "__main__":
    unittest.main()
