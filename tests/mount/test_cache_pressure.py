"""Read-ahead under cache pressure: many sequential readers over a cache too
small for all of their windows. Bytes fetched must stay close to bytes read
(read-ahead never throws away what it fetched before it was used), and every
byte read is checked."""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

MIB = 1 << 20
RECEIVED = "s3rdmafs_http_bytes_received_total"


class CachePressureTest(harness.MountTestCase):
    def readers(self, mnt, files, chunk):
        errors = []

        def read(name, data):
            try:
                with open(os.path.join(mnt, name), "rb") as f:
                    off = 0
                    while True:
                        got = f.read(chunk)
                        if not got:
                            break
                        if got != data[off:off + len(got)]:
                            errors.append(f"{name}: wrong bytes at {off}")
                            return
                        off += len(got)
                    if off != len(data):
                        errors.append(f"{name}: {off} of {len(data)} bytes")
            except OSError as e:
                errors.append(f"{name}: {e}")

        threads = [threading.Thread(target=read, args=item) for item in files.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def test_thirty_readers_on_a_16_mib_cache_fetch_little_more_than_they_read(self):
        files = {}
        for i in range(30):
            name = f"s{i:02d}"
            files[name] = os.urandom(6 * MIB + i * 4096)
            self.write(name, files[name])
        srv = self.server()
        where = f"127.0.0.1:{harness.free_port()}"
        m = self.mount(srv, options=["cache.size=16M", f"metrics.listen={where}"])
        before = harness.metrics(where)[RECEIVED]
        errors = self.readers(m.mountpoint, files, MIB)
        self.assertEqual(errors, [])
        after = harness.metrics(where)
        fetched = after[RECEIVED] - before
        read = sum(len(d) for d in files.values())
        print(f"30 readers, 16 MiB cache: read {read} fetched {fetched:.0f} "
              f"({fetched / read:.2f}x), evictions {after['s3rdmafs_cache_evictions_total']:.0f} "
              f"(held {after['s3rdmafs_cache_held_evictions_total']:.0f}), read-ahead blocks "
              + ", ".join("%s %d" % (o, after['s3rdmafs_readahead_blocks_total{outcome="%s"}' % o])
                          for o in ("used", "wasted", "refused")))
        self.assertLessEqual(fetched, 1.5 * read, f"fetched {fetched / read:.2f}x the bytes read")


if __name__ == "__main__":
    import unittest
    unittest.main()
