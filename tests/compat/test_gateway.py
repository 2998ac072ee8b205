"""s3rdma-server as a gateway in front of a real Ceph RGW (issue 14): every
S3 request goes on to RGW re-signed with the gateway's own credentials,
while clients sign with the gateway's keys. One RGW serves the module.

- the RGW mount tests (test_radosgw_mount.py) pass through a gateway;
- the scripted awscli, s3cmd and boto3 sessions (test_clients.py) pass
  through a gateway;
- what only a gateway does: the key mapping, aws-chunked bodies decoded
  and checked on the way, checksums checked before the last byte goes up,
  an upstream that is down, a bad --upstream;
- a mount spread over three gateways, one killed mid-read: no wrong byte,
  the reads go on (through the fault proxy, which counts what it carried).
"""
import base64
import hashlib
import http.client
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import unittest
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import fault_proxy  # noqa: E402
import harness  # noqa: E402
import radosgw  # noqa: E402
import test_clients as clients  # noqa: E402  (a module attribute: not collected here)
import test_radosgw_mount as rgw_mount  # noqa: E402

RGW = None
RGW_DIR = None


def setUpModule():
    global RGW, RGW_DIR
    RGW_DIR = tempfile.mkdtemp(prefix="s3rdmafs-gw-rgw-")
    RGW = radosgw.Radosgw(RGW_DIR)
    try:
        RGW.start()
    except Exception:
        RGW.stop()
        raise


def tearDownModule():
    RGW.stop()
    if not os.environ.get("S3RDMAFS_KEEP"):
        shutil.rmtree(RGW_DIR, ignore_errors=True)


def start_gateway(log, extra=()):
    """A gateway in front of the module's RGW; its clients sign with harness's keys."""
    return harness.Server(None, log=log, extra=extra,
                          upstream=(RGW.endpoint, radosgw.ACCESS_KEY, radosgw.SECRET_KEY)).start()


def rgw_client():
    import boto3
    return boto3.client("s3", endpoint_url=RGW.endpoint, region_name="us-east-1",
                        aws_access_key_id=radosgw.ACCESS_KEY, aws_secret_access_key=radosgw.SECRET_KEY)


def gateway_client(gw):
    import boto3
    import botocore.config
    return boto3.client("s3", endpoint_url=gw.endpoint, region_name="us-east-1",
                        aws_access_key_id=harness.ACCESS_KEY, aws_secret_access_key=harness.SECRET_KEY,
                        config=botocore.config.Config(s3={"addressing_style": "path"},
                                                      retries={"max_attempts": 1}))


class MountThroughGatewayTest(rgw_mount.RadosgwMountTest):
    """Every RGW mount test, with the mount on a gateway instead of RGW."""

    @classmethod
    def setUpClass(cls):
        cls.rgw = RGW
        cls.s3 = rgw_client()
        cls.s3.create_bucket(Bucket=rgw_mount.BUCKET)
        cls.gw = start_gateway(os.path.join(RGW_DIR, "gateway-mount.log"))

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()

    def rgw_mount(self, name="mnt", options=()):
        return self.mount(self.gw.endpoint, source=f"{rgw_mount.BUCKET}:/{self._testMethodName}",
                          name=name, options=list(options))


class ClientsThroughGatewayTest(clients.ClientsTest):
    """The scripted awscli, s3cmd and boto3 sessions, on a gateway."""

    def setUp(self):
        super().setUp()
        self.srv.stop()
        self.srv = start_gateway(os.path.join(self.tmp, "gateway.log"))
        self._servers.append(self.srv)


class GatewayTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.gw = start_gateway(os.path.join(self.tmp, "gateway.log"))
        self._servers.append(self.gw)
        self.s3 = gateway_client(self.gw)
        self.rgw = rgw_client()
        self.bucket = "gw-" + self._testMethodName.replace("_", "-")[5:40].strip("-")
        self.rgw.create_bucket(Bucket=self.bucket)

    def code_of(self, fn, **kw):
        import botocore.exceptions
        try:
            fn(**kw)
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]
        self.fail(f"{fn.__name__} succeeded")

    def test_clients_keep_their_keys_and_act_as_the_gateway_upstream(self):
        self.s3.put_object(Bucket=self.bucket, Key="k", Body=b"through", Metadata={"a": "b"})
        # On RGW, as the gateway's upstream identity, with what the client sent.
        got = self.rgw.get_object(Bucket=self.bucket, Key="k")
        self.assertEqual(got["Body"].read(), b"through")
        self.assertEqual(got["Metadata"], {"a": "b"})
        # RGW's answers come back as they are: ETag, ranges, errors, conditionals.
        head = self.s3.head_object(Bucket=self.bucket, Key="k")
        self.assertEqual(head["ETag"], got["ETag"])
        self.assertEqual(self.s3.get_object(Bucket=self.bucket, Key="k", Range="bytes=2-4")["Body"].read(),
                         b"rou")
        self.assertEqual(self.code_of(self.s3.get_object, Bucket=self.bucket, Key="none"), "NoSuchKey")
        self.assertEqual(self.code_of(self.s3.get_object, Bucket=self.bucket, Key="k", IfMatch='"0"'),
                         "PreconditionFailed")
        self.assertEqual(self.code_of(self.s3.list_objects_v2, Bucket="no-such-bucket-here"), "NoSuchBucket")
        # A presigned URL made with the gateway's key.
        import urllib.request
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "k"},
                                             ExpiresIn=60)
        self.assertEqual(urllib.request.urlopen(url, timeout=30).read(), b"through")
        # RGW's own key is not one of the gateway's: refused there, never sent on.
        import boto3
        foreign = boto3.client("s3", endpoint_url=self.gw.endpoint, region_name="us-east-1",
                               aws_access_key_id=radosgw.ACCESS_KEY,
                               aws_secret_access_key=radosgw.SECRET_KEY)
        self.assertEqual(self.code_of(foreign.list_objects_v2, Bucket=self.bucket), "InvalidAccessKeyId")
        wrong = boto3.client("s3", endpoint_url=self.gw.endpoint, region_name="us-east-1",
                             aws_access_key_id=harness.ACCESS_KEY, aws_secret_access_key="not-it")
        self.assertEqual(self.code_of(wrong.put_object, Bucket=self.bucket, Key="forged", Body=b"x"),
                         "SignatureDoesNotMatch")
        self.assertEqual(self.code_of(self.rgw.head_object, Bucket=self.bucket, Key="forged"), "404")

    def test_multipart_maps_one_to_one_and_nothing_is_buffered_whole(self):
        part = os.urandom(5 << 20)
        up = self.s3.create_multipart_upload(Bucket=self.bucket, Key="mp")["UploadId"]
        # The upload id is RGW's: RGW lists it.
        self.assertEqual([u["UploadId"] for u in self.rgw.list_multipart_uploads(Bucket=self.bucket)["Uploads"]],
                         [up])
        etags = [self.s3.upload_part(Bucket=self.bucket, Key="mp", UploadId=up, PartNumber=n,
                                     Body=part[::-1] if n == 2 else part)["ETag"] for n in (1, 2)]
        done = self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key="mp", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags)]})
        # RGW 16 answers Complete with an empty ETag; whatever it says comes back as it is.
        self.assertIn(done["ETag"], ("", self.rgw.head_object(Bucket=self.bucket, Key="mp")["ETag"]))
        self.assertTrue(self.rgw.head_object(Bucket=self.bucket, Key="mp")["ETag"].endswith('-2"'))
        self.assertEqual(self.rgw.get_object(Bucket=self.bucket, Key="mp")["Body"].read(), part + part[::-1])
        with open(f"/proc/{self.gw.proc.pid}/status") as f:
            status = f.read()
        rss_kb = int(status.split("VmHWM:")[1].split()[0])
        self.assertLess(rss_kb, 60 * 1024, "the gateway held more than its buffers: peak RSS in KiB")

    def test_checksums_are_checked_before_the_last_byte_goes_up(self):
        body = b"checked on the way" * 1000
        good = base64.b64encode(struct.pack(">I", zlib.crc32(body))).decode()
        self.s3.put_object(Bucket=self.bucket, Key="good", Body=body, ChecksumCRC32=good)
        self.assertEqual(self.rgw.get_object(Bucket=self.bucket, Key="good")["Body"].read(), body)
        self.assertEqual(self.code_of(self.s3.put_object, Bucket=self.bucket, Key="bad", Body=body,
                                      ChecksumCRC32="AAAAAA=="), "BadDigest")
        self.assertEqual(self.code_of(self.rgw.head_object, Bucket=self.bucket, Key="bad"), "404")

    def chunked_put(self, key, chunks, tamper=False, trailer_crc=None):
        """A signed aws-chunked PUT with a signed CRC32 trailer, as current SDKs send it."""
        crc = trailer_crc or base64.b64encode(struct.pack(">I", zlib.crc32(b"".join(chunks)))).decode()
        status, _, body = harness.aws_chunked_put(self.gw.port, f"/{self.bucket}/{key}", chunks,
                                                  trailer=("crc32", crc), sign_trailer=True,
                                                  forge_at=len(chunks) - 1 if tamper else None)
        return status, body

    def test_aws_chunked_bodies_are_decoded_and_checked_on_the_way(self):
        chunks = [os.urandom(64 << 10), os.urandom(64 << 10), b"tail"]
        status, reply = self.chunked_put("chunked", chunks)
        self.assertEqual(status, 200, reply)
        self.assertEqual(self.rgw.get_object(Bucket=self.bucket, Key="chunked")["Body"].read(), b"".join(chunks))
        status, reply = self.chunked_put("forged", chunks, tamper=True)
        self.assertEqual(status, 403, reply)
        self.assertIn(b"SignatureDoesNotMatch", reply)
        status, reply = self.chunked_put("wrongsum", chunks, trailer_crc="AAAAAA==")
        self.assertEqual(status, 400, reply)
        self.assertIn(b"BadDigest", reply)
        for key in ("forged", "wrongsum"):
            self.assertEqual(self.code_of(self.rgw.head_object, Bucket=self.bucket, Key=key), "404", key)

    def test_an_upstream_that_is_down_is_503_and_names_it(self):
        port = harness.free_port()
        sock = os.path.join(self.tmp, "gw-metrics.sock")
        gw = harness.Server(None, log=os.path.join(self.tmp, "gw-down.log"),
                            extra=["--metrics-listen", f"unix:{sock}"],
                            upstream=(f"http://127.0.0.1:{port}", "a", "b")).start()
        self._servers.append(gw)
        status, reply = self._get(gw, f"/{self.bucket}/x")
        self.assertEqual(status, 503)
        self.assertIn(b"ServiceUnavailable", reply)
        self.assertIn(f"127.0.0.1:{port}".encode(), reply)
        mt = harness.metrics("unix:" + sock)
        self.assertEqual(mt['s3rdma_server_upstream_failures_total{kind="unanswered"}'], 1)
        self.assertEqual(mt["s3rdma_server_gateway"], 1)

    def test_metrics_count_requests_and_the_bytes_moved_upstream(self):
        sock = os.path.join(self.tmp, "gw-metrics.sock")
        gw = start_gateway(os.path.join(self.tmp, "gw-metrics.log"), extra=["--metrics-listen", f"unix:{sock}"])
        self._servers.append(gw)
        s3 = gateway_client(gw)
        body = os.urandom(300000)
        s3.put_object(Bucket=self.bucket, Key="m", Body=body)
        self.assertEqual(s3.get_object(Bucket=self.bucket, Key="m")["Body"].read(), body)
        s3.head_object(Bucket=self.bucket, Key="m")
        mt = harness.metrics("unix:" + sock)
        self.assertEqual(mt['s3rdma_server_requests_total{method="PUT"}'], 1)
        self.assertEqual(mt['s3rdma_server_requests_total{method="GET"}'], 1)
        self.assertEqual(mt['s3rdma_server_requests_total{method="HEAD"}'], 1)
        self.assertEqual(mt['s3rdma_server_upstream_bytes_total{direction="up"}'], len(body))
        self.assertEqual(mt['s3rdma_server_upstream_bytes_total{direction="down"}'], len(body))
        self.assertEqual(mt['s3rdma_server_upstream_failures_total{kind="unanswered"}'], 0)

    def _get(self, gw, path):
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        req = AWSRequest(method="GET", url=gw.endpoint + path)
        S3SigV4Auth(Credentials(harness.ACCESS_KEY, harness.SECRET_KEY), "s3", "us-east-1").add_auth(req)
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
        c.request("GET", path, headers=dict(req.headers.items()))
        r = c.getresponse()
        return r.status, r.read()

    def test_bad_upstream_settings_are_named(self):
        for args, says in ((["--upstream", "ftp://host"], "upstream.endpoint must be http(s)"),
                           (["--upstream", "http://h:1/path"], "no path"),
                           (["--upstream", "http://h:1"], "no credentials found")):
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env["HOME"] = self.tmp
            r = subprocess.run([harness.SERVER_BIN, *args, "--access-key", "a", "--secret-key", "b"],
                               capture_output=True, text=True, timeout=30, env=env)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(says, r.stderr)


class ThreeGatewaysTest(harness.MountTestCase):
    """A mount spread over three gateways; one is killed mid-read."""

    def test_one_of_three_gateways_killed_mid_read(self):
        rgw = rgw_client()
        rgw.create_bucket(Bucket="three")
        data = os.urandom(96 << 20)
        rgw.put_object(Bucket="three", Key="big", Body=data)
        gws = [start_gateway(os.path.join(self.tmp, f"gw{i}.log")) for i in range(3)]
        self._servers.extend(gws)
        # Each gateway behind its own fault proxy: it counts the bytes it
        # carried, so the test knows the victim was serving when it died.
        proxies = [fault_proxy.FaultProxy(gw.port) for gw in gws]
        self.addCleanup(lambda: [p.stop() for p in proxies])
        endpoints = ";".join(f"http://127.0.0.1:{p.port}" for p in proxies)
        sock = os.path.join(self.tmp, "metrics.sock")
        m = self.mount(endpoints, source="three", options=[
            f"metrics.listen=unix:{sock}", "cache.size=64MiB", "s3.retry_base_delay=50ms"])
        path = os.path.join(m.mountpoint, "big")
        wrong, errors = [], []
        reader = threading.Thread(target=harness.checked_reader(path, data, 1 << 20, wrong, errors))
        reader.start()
        harness.wait_for(lambda: all(p.bytes_down > (4 << 20) for p in proxies), 60,
                         "every gateway serving part of the file")
        victim = gws[1]
        carried = proxies[1].bytes_down
        victim.stop(signal.SIGKILL)
        reader.join(180)
        self.assertFalse(reader.is_alive(), "the read hung after a gateway died")
        self.assertEqual(errors, [], "a read failed after one gateway of three died")
        self.assertEqual(wrong, [], "wrong bytes after a gateway died")
        self.assertLess(carried, len(data), "the victim had served the whole file before it died")
        mt = harness.metrics("unix:" + sock)
        self.assertGreater(mt.get("s3rdmafs_s3_endpoint_failovers_total", 0), 0, mt)
        # Reads go on after the failover: a second pass, the victim still dead.
        with open(path, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data).hexdigest())


if __name__ == "__main__":
    unittest.main()
