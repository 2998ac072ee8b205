"""Never hang (issue 10): a stalled server does not hold a read past
fuse.read_timeout, and a killed reader goes away at once. The stall comes
from the fault proxy between the mount and the server."""
import errno
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import fault_proxy  # noqa: E402
import harness  # noqa: E402

MIB = 1 << 20


class LivenessTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server()
        self.proxy = fault_proxy.FaultProxy(self.srv.port)
        self.write("big", os.urandom(8 * MIB))

    def tearDown(self):
        self.proxy.clear()
        super().tearDown()
        self.proxy.stop()

    def mnt(self, extra=()):
        return self.mount(self.proxy.endpoint, options=["cache.size=32M", "s3.low_speed_timeout=30s",
                                                        *extra])

    def test_a_stalled_read_answers_etimedout_by_the_deadline(self):
        self.stalled_read_answers_by_the_deadline([])

    def test_a_stalled_streamed_read_answers_etimedout_by_the_deadline(self):
        harness.allow_stream_pipes(self)
        m = self.stalled_read_answers_by_the_deadline(["fuse.direct_io=true"])
        self.assertIn("(stream)", m.log_text(), "the stalled GET was the stream's")

    def stalled_read_answers_by_the_deadline(self, extra):
        m = self.mnt(["fuse.read_timeout=3s", *extra])
        p = os.path.join(m.mountpoint, "big")
        os.stat(p)  # lookup before the stall: only the GET hangs
        rule = self.proxy.add("pause", method="GET", target=r"/bucket/big$", times=None, seconds=60)
        t0 = time.time()
        with self.assertRaises(OSError) as e:
            with open(p, "rb", buffering=0) as f:
                f.read(MIB)
        took = time.time() - t0
        self.assertGreater(rule.hits, 0, "the GET was stalled")
        self.assertEqual(e.exception.errno, errno.ETIMEDOUT)
        self.assertLess(took, 8, f"the read took {took:.1f}s with fuse.read_timeout=3s")
        self.assertIn("fuse.read_timeout", m.log_text())
        self.proxy.clear()
        with open(p, "rb") as f:  # the mount is fine once the server answers
            self.assertEqual(len(f.read()), 8 * MIB)
        return m

    def test_a_killed_reader_goes_away_at_once(self):
        m = self.mnt(["fuse.read_timeout=60s"])
        p = os.path.join(m.mountpoint, "big")
        os.stat(p)
        rule = self.proxy.add("pause", method="GET", target=r"/bucket/big$", times=None, seconds=60)
        reader = subprocess.Popen([sys.executable, "-c",
                                   f"open({p!r}, 'rb', buffering=0).read({MIB})"])
        harness.wait_for(lambda: rule.hits > 0, what="the reader's GET")
        time.sleep(0.3)
        self.assertIsNone(reader.poll(), "the reader is blocked in read()")
        t0 = time.time()
        reader.send_signal(signal.SIGKILL)
        reader.wait(10)
        self.assertLess(time.time() - t0, 2, "SIGKILL ends a reader blocked on the network")

    def test_sigterm_with_a_stalled_read_stops_in_order(self):
        self.sigterm_with_a_stalled_read_stops_in_order([])

    def test_sigterm_with_a_stalled_streamed_read_stops_in_order(self):
        harness.allow_stream_pipes(self)
        self.sigterm_with_a_stalled_read_stops_in_order(["fuse.direct_io=true"])

    def sigterm_with_a_stalled_read_stops_in_order(self, extra):
        m = self.mnt(["fuse.read_timeout=60s", *extra])
        p = os.path.join(m.mountpoint, "big")
        os.stat(p)
        rule = self.proxy.add("pause", method="GET", target=r"/bucket/big$", times=None, seconds=60)
        reader = subprocess.Popen([sys.executable, "-c", f"""
import sys
try:
    open({p!r}, 'rb', buffering=0).read({MIB})
except OSError as e:
    sys.exit(e.errno)
"""])
        harness.wait_for(lambda: rule.hits > 0, what="the reader's GET")
        pid = m.daemon_pid()
        t0 = time.time()
        os.kill(pid, signal.SIGTERM)
        harness.wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 15, "daemon exit")
        self.assertLess(time.time() - t0, 10, "shutdown does not wait out the stalled transfer")
        self.assertNotEqual(reader.wait(10), 0, "the reader got an error, not data")
        log = m.log_text()
        self.assertIn("unmounted", log)
        after = log[log.index("unmounted"):]
        self.assertNotIn("read:", after, "no reply after the session is gone")

    def test_stalled_streamed_reads_leave_workers_for_stat_and_lookup(self):
        harness.allow_stream_pipes(self)
        paths = []
        m = self.mnt(["fuse.read_timeout=60s", "fuse.direct_io=true", "fuse.max_threads=4"])
        for i in range(4):
            self.write(f"s{i}", os.urandom(8 * MIB))
            paths.append(os.path.join(m.mountpoint, f"s{i}"))
            os.stat(paths[-1])
        rule = self.proxy.add("pause", method="GET", target=r"/bucket/s\d$", times=None, seconds=60)
        readers = [subprocess.Popen([sys.executable, "-c", f"open({p!r}, 'rb', buffering=0).read({MIB})"])
                   for p in paths]
        self.addCleanup(lambda: [r.kill() for r in readers])
        # Two readers wait on their streams (half of fuse.max_threads), two on the cache path.
        harness.wait_for(lambda: rule.hits >= 4, what="every reader's GET")
        time.sleep(0.3)
        self.assertTrue(all(r.poll() is None for r in readers), "the readers are blocked in read()")
        self.write("fresh", b"new")
        t0 = time.time()
        self.assertIn("fresh", os.listdir(m.mountpoint))
        self.assertEqual(os.stat(os.path.join(m.mountpoint, "fresh")).st_size, 3)
        self.assertLess(time.time() - t0, 3, "stat and lookup found a worker")


if __name__ == "__main__":
    unittest.main()
