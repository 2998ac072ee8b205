"""Operating a live mount: SIGHUP reloads what can change safely (metadata
TTLs, log level) and names what needs a remount; a broken configuration on
reload changes nothing."""
import os
import signal
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


if __name__ == "__main__":
    unittest.main()
