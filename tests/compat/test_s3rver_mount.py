"""The mount works against an S3 server nobody here wrote: s3rver (npm)."""
import hashlib
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

S3RVER = os.environ.get("S3RVER_BIN", "/opt/s3rdmafs-test/node_modules/.bin/s3rver")


class S3rverMountTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        if not os.path.exists(S3RVER):
            self.fail(f"s3rver not installed at {S3RVER}: run scripts/install-deps.sh --test")
        self.port = harness.free_port()
        data = os.path.join(self.tmp, "s3rver-data")
        os.makedirs(data)
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        self.s3rver_log = open(os.path.join(self.tmp, "s3rver.log"), "wb")
        self.proc = subprocess.Popen([S3RVER, "-d", data, "-a", "127.0.0.1", "-p", str(self.port),
                                      "--configure-bucket", "compat", "--silent"],
                                     stdout=self.s3rver_log, stderr=subprocess.STDOUT, env=env)
        harness.wait_for(self._up, 30, "s3rver")

    def _up(self):
        return harness.port_open(self.port)

    def tearDown(self):
        super().tearDown()
        self.proc.terminate()
        self.proc.wait(10)
        self.s3rver_log.close()

    def test_mount_reads_what_boto3_wrote(self):
        files = {f"sizes/f{s}": os.urandom(s) for s in (0, 1, (1 << 20) - 1, 1 << 20, (3 << 20) + 7)}
        files.update({f"many/k{i:04d}": b"%d" % i for i in range(1100)})  # more than one LIST page
        # No keys nested two levels deep: s3rver 3 leaves their top-level
        # CommonPrefix out of delimiter listings (its bug, seen with curl too).
        script = ["import boto3, sys, pickle",
                  f"s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{self.port}', region_name='us-east-1',"
                  " aws_access_key_id='S3RVER', aws_secret_access_key='S3RVER')",
                  "files = pickle.load(sys.stdin.buffer)",
                  "[s3.put_object(Bucket='compat', Key=k, Body=v) for k, v in files.items()]",
                  "s3.put_object(Bucket='compat', Key='marker/', Body=b'')"]
        import pickle
        r = subprocess.run(["/usr/bin/python3", "-c", "\n".join(script)], input=pickle.dumps(files),
                           capture_output=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        # Small files come with their attributes (ranged GETs instead of HEADs,
        # an empty object included): a third-party server's answers to them.
        m = self.mount(f"http://127.0.0.1:{self.port}", source="compat", access_key="S3RVER", secret_key="S3RVER",
                       options=["metadata.small_file_read=64K"])
        self.assertEqual(sorted(os.listdir(m.mountpoint)), ["many", "marker", "sizes"])
        self.assertEqual(len(os.listdir(os.path.join(m.mountpoint, "many"))), 1100)
        self.assertEqual(os.listdir(os.path.join(m.mountpoint, "marker")), [])
        for key, data in files.items():
            if key.startswith("many/") and not key.endswith("7"):
                continue
            with open(os.path.join(m.mountpoint, key), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data).hexdigest(), key)


if __name__ == "__main__":
    unittest.main()
