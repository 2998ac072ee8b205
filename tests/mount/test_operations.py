"""Operating a live mount: SIGHUP reloads what can change safely (metadata
TTLs, log level) and names what needs a remount; a broken configuration on
reload changes nothing. The metrics endpoint (loopback or a Unix socket)
answers Prometheus text that shows a long read progressing."""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402


class ReloadTest(harness.MountTestCase):
    def write_config(self, attr_ttl, level="info", cache="32M", extra=""):
        with open(self.cfg, "w") as f:
            f.write(f'[metadata]\nattr_ttl = "{attr_ttl}"\nentry_ttl = "{attr_ttl}"\n'
                    f'[cache]\nsize = "{cache}"\n[log]\nlevel = "{level}"\n{extra}')

    def test_sighup_applies_ttls_and_log_level(self):
        srv = self.server()
        self.cfg = os.path.join(self.tmp, "mount.toml")
        self.write_config("1h")
        self.write("a", b"1")
        self.write("b", b"1")
        m = self.mount(srv, config=self.cfg)
        pa = os.path.join(m.mountpoint, "a")
        self.assertEqual(os.stat(pa).st_size, 1)
        self.write("a", b"22")
        self.assertEqual(os.stat(pa).st_size, 1, "an hour of attribute TTL: the old size")

        self.write_config("0s", level="debug", cache="64M")
        os.kill(m.daemon_pid(), signal.SIGHUP)
        harness.wait_for(lambda: "SIGHUP: configuration reloaded" in m.log_text(), what="the reload")
        log = m.log_text()
        self.assertIn("metadata.attr_ttl = \"0s\"", log)
        self.assertIn("log.level = \"debug\"", log)
        self.assertIn("not applied until a remount: cache.size", log)
        self.assertTrue(harness.is_mounted(m.mountpoint), "SIGHUP must not unmount")
        pb = os.path.join(m.mountpoint, "b")
        self.assertEqual(os.stat(pb).st_size, 1)
        self.write("b", b"333")
        self.assertEqual(os.stat(pb).st_size, 3, "TTL 0 after the reload: the new size at once")
        with open(os.path.join(m.mountpoint, "c"), "wb") as f:
            f.write(b"x")
        self.assertIn("DEBUG published 'c'", m.log_text()[len(log):], "debug logging is on")

        with open(self.cfg, "a") as f:
            f.write("[cache]\nsize = \"lots\"\n")
        os.kill(m.daemon_pid(), signal.SIGHUP)
        harness.wait_for(lambda: "configuration not reloaded" in m.log_text(), what="the refusal")
        self.assertTrue(harness.is_mounted(m.mountpoint))
        with open(pb, "rb") as f:
            self.assertEqual(f.read(), b"333")


class SystemdTest(harness.MountTestCase):
    def test_notify_ready_only_when_the_mount_answers_and_sigterm_unmounts(self):
        import socket
        self.write("f", b"x")
        srv = self.server()
        notify = os.path.join(self.tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify)
        sock.settimeout(30)
        mnt = os.path.join(self.tmp, "mnt")
        os.makedirs(mnt)
        env = dict(os.environ, NOTIFY_SOCKET=notify, AWS_ACCESS_KEY_ID=harness.ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=harness.SECRET_KEY)
        # As the unit runs it: in the foreground, Type=notify.
        proc = subprocess.Popen([harness.FS_BIN, "-f", "bucket", mnt, "-o", f"s3.endpoint={srv.endpoint}",
                                 "-o", "cache.size=16M"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            msg = sock.recv(4096).decode()
            self.assertIn("READY=1", msg)
            self.assertTrue(harness.is_mounted(mnt), "READY=1 comes after the mount answers")
            self.assertEqual(os.listdir(mnt), ["f"])
            proc.send_signal(signal.SIGTERM)  # systemctl stop
            self.assertEqual(proc.wait(30), 0)
            self.assertIn("STOPPING=1", sock.recv(4096).decode())
            self.assertFalse(harness.is_mounted(mnt), "a clean stop unmounts")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if harness.is_mounted(mnt):
                subprocess.run(["fusermount3", "-u", mnt])
            sock.close()


def fetch_metrics(where):
    text = harness.metrics_text(where)
    return text, harness.metrics(where, text)


class MetricsTest(harness.MountTestCase):
    def test_metrics_endpoint_shows_a_long_read_progressing(self):
        data = os.urandom(48 << 20)
        self.write("big", data)
        srv = self.server()
        where = f"127.0.0.1:{harness.free_port()}"
        m = self.mount(srv, options=["cache.size=32M", "readahead.max=4M", f"metrics.listen={where}"])
        text, before = fetch_metrics(where)
        for family in ["s3rdmafs_request_duration_seconds histogram", "s3rdmafs_cache_hit_ratio gauge",
                       "s3rdmafs_request_errors_total counter", "s3rdmafs_http_in_flight gauge",
                       "s3rdmafs_memory_bytes gauge", "s3rdmafs_data_bytes_total counter"]:
            self.assertIn("# TYPE " + family, text)
        received = 's3rdmafs_http_bytes_received_total'
        samples = []
        with open(os.path.join(m.mountpoint, "big"), "rb") as f:
            for i in range(12):  # a slow reader: 4 MiB every 50 ms
                self.assertEqual(f.read(4 << 20), data[i * (4 << 20):(i + 1) * (4 << 20)])
                if i % 4 == 3:
                    samples.append(fetch_metrics(where)[1][received])
                time.sleep(0.05)
        self.assertEqual(samples, sorted(samples))
        self.assertLess(samples[0], samples[-1], f"the read shows progress: {samples}")
        after = fetch_metrics(where)[1]
        self.assertGreater(after['s3rdmafs_request_duration_seconds_count{method="GET"}'], 0)
        self.assertEqual(after['s3rdmafs_request_errors_total{cause="NoSuchKey"}'], 0)
        self.assertGreater(after['s3rdmafs_memory_bytes{kind="rss"}'], 0)
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{where}/other"],
                             capture_output=True, text=True)
        self.assertEqual(out.stdout, "404")

    def test_unix_socket_and_loopback_only(self):
        srv = self.server()
        sock = os.path.join(self.tmp, "metrics.sock")
        m = self.mount(srv, options=["cache.size=16M", f"metrics.listen=unix:{sock}"])
        self.assertIn("s3rdmafs_cache_blocks", fetch_metrics(f"unix:{sock}")[0])
        m.stop()
        bad = harness.Mount(os.path.join(self.tmp, "bad"), os.path.join(self.tmp, "bad.log"))
        r = bad.start("bucket", srv.endpoint, options=["metrics.listen=0.0.0.0:9464"], check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("metrics.listen: must be a loopback", r.stderr)


if __name__ == "__main__":
    unittest.main()
