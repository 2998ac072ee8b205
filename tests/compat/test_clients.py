"""The reference server passes scripted sessions of clients nobody here wrote:
Debian's awscli v2 (/usr/bin/aws), s3cmd and boto3."""
import hashlib
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402


class ClientsTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server()
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID=harness.ACCESS_KEY, AWS_SECRET_ACCESS_KEY=harness.SECRET_KEY,
                        AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                        AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        self.env.pop("AWS_PROFILE", None)
        self.env.pop("AWS_CA_BUNDLE", None)
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)

    def run_ok(self, args, **kw):
        r = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=120, **kw)
        self.assertEqual(r.returncode, 0, f"{args}: {r.stdout}\n{r.stderr}")
        return r.stdout

    def aws(self, *args, **kw):
        return self.run_ok(["/usr/bin/aws", "--endpoint-url", self.srv.endpoint, *args], **kw)

    def test_awscli_session(self):
        payload = os.urandom(3 << 20)  # below the multipart threshold
        with open(os.path.join(self.src, "blob.bin"), "wb") as f:
            f.write(payload)
        self.aws("s3", "mb", "s3://awsbucket")
        self.assertIn("awsbucket", self.aws("s3", "ls"))
        self.aws("s3", "cp", os.path.join(self.src, "blob.bin"), "s3://awsbucket/dir/blob.bin")
        self.aws("s3", "cp", "-", "s3://awsbucket/dir/sub/tiny name+.txt", input="hello")
        listing = self.aws("s3", "ls", "--recursive", "s3://awsbucket/")
        self.assertIn("dir/blob.bin", listing)
        self.assertIn("dir/sub/tiny name+.txt", listing)
        self.assertIn("PRE sub/", self.aws("s3", "ls", "s3://awsbucket/dir/"))
        head = json.loads(self.aws("s3api", "head-object", "--bucket", "awsbucket", "--key", "dir/blob.bin"))
        self.assertEqual(head["ContentLength"], len(payload))
        self.assertEqual(head["ETag"], '"%s"' % hashlib.md5(payload).hexdigest())
        out = os.path.join(self.tmp, "range.out")
        self.aws("s3api", "get-object", "--bucket", "awsbucket", "--key", "dir/blob.bin", "--range", "bytes=100-199", out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), payload[100:200])
        self.aws("s3", "cp", "s3://awsbucket/dir/blob.bin", os.path.join(self.tmp, "back.bin"))
        with open(os.path.join(self.tmp, "back.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)
        pages = json.loads(self.aws("s3api", "list-objects-v2", "--bucket", "awsbucket", "--max-items", "1",
                                    "--page-size", "1"))
        self.assertEqual(len(pages["Contents"]), 1)
        self.assertIn("NextToken", pages)
        self.aws("s3", "rm", "--recursive", "s3://awsbucket/dir/")
        self.assertEqual(self.aws("s3", "ls", "--recursive", "s3://awsbucket/").strip(), "")
        self.aws("s3", "rb", "s3://awsbucket")

    def test_awscli_multipart_and_copies(self):
        self.aws("s3", "mb", "s3://mpu")
        big = os.path.join(self.tmp, "big.bin")
        data = os.urandom(20 * 1024 * 1024 + 3)  # awscli goes multipart above 8 MiB
        with open(big, "wb") as f:
            f.write(data)
        self.aws("s3", "cp", big, "s3://mpu/big.bin", "--metadata", "mode=33188,uid=1000")
        head = json.loads(self.aws("s3api", "head-object", "--bucket", "mpu", "--key", "big.bin"))
        self.assertEqual(head["ContentLength"], len(data))
        self.assertTrue(head["ETag"].endswith('-3"'), head["ETag"])
        self.assertEqual(head["Metadata"], {"mode": "33188", "uid": "1000"})
        self.aws("s3api", "copy-object", "--bucket", "mpu", "--key", "copy.bin", "--copy-source", "mpu/big.bin",
                 "--metadata-directive", "REPLACE", "--metadata", "mode=33261")
        head = json.loads(self.aws("s3api", "head-object", "--bucket", "mpu", "--key", "copy.bin"))
        self.assertEqual(head["Metadata"], {"mode": "33261"})
        back = os.path.join(self.tmp, "back.bin")
        self.aws("s3", "cp", "s3://mpu/copy.bin", back)
        with open(back, "rb") as f:
            self.assertEqual(f.read(), data)
        up = json.loads(self.aws("s3api", "create-multipart-upload", "--bucket", "mpu", "--key", "abandoned"))
        self.aws("s3api", "abort-multipart-upload", "--bucket", "mpu", "--key", "abandoned",
                 "--upload-id", up["UploadId"])
        self.assertNotIn("abandoned", self.aws("s3", "ls", "s3://mpu/"))

    def test_s3cmd_session(self):
        host = self.srv.endpoint.split("//")[1]
        cfg = os.path.join(self.tmp, "s3cfg")
        with open(cfg, "w") as f:
            f.write(f"[default]\naccess_key = {harness.ACCESS_KEY}\nsecret_key = {harness.SECRET_KEY}\n"
                    f"host_base = {host}\nhost_bucket = {host}\nuse_https = False\nsignature_v2 = False\n"
                    "bucket_location = us-east-1\n")
        s3cmd = ["s3cmd", "-c", cfg]
        with open(os.path.join(self.src, "a.txt"), "wb") as f:
            f.write(b"s3cmd payload\n" * 1000)
        self.run_ok(s3cmd + ["mb", "s3://cmdbucket"])
        self.run_ok(s3cmd + ["put", os.path.join(self.src, "a.txt"), "s3://cmdbucket/x/a.txt"])
        self.assertIn("s3://cmdbucket/x/a.txt", self.run_ok(s3cmd + ["ls", "-r", "s3://cmdbucket"]))
        self.assertIn("DIR", self.run_ok(s3cmd + ["ls", "s3://cmdbucket"]))
        got = os.path.join(self.tmp, "a.got")
        self.run_ok(s3cmd + ["get", "s3://cmdbucket/x/a.txt", got])
        with open(got, "rb") as f:
            self.assertEqual(f.read(), b"s3cmd payload\n" * 1000)
        self.assertIn("MD5 sum", self.run_ok(s3cmd + ["info", "s3://cmdbucket/x/a.txt"]))
        self.run_ok(s3cmd + ["del", "s3://cmdbucket/x/a.txt"])
        self.assertNotIn("a.txt", self.run_ok(s3cmd + ["ls", "-r", "s3://cmdbucket"]))

    def test_boto3_session(self):
        script = f"""
import boto3, botocore
s3 = boto3.client("s3", endpoint_url="{self.srv.endpoint}", region_name="us-east-1",
                  aws_access_key_id="{harness.ACCESS_KEY}", aws_secret_access_key="{harness.SECRET_KEY}")
s3.create_bucket(Bucket="botobucket")
for i in range(25):
    s3.put_object(Bucket="botobucket", Key=f"p/{{i:03d}}", Body=b"v" * i)
s3.put_object(Bucket="botobucket", Key="q/marker/", Body=b"")
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="botobucket", PaginationConfig={{"PageSize": 7}}) for o in page.get("Contents", [])]
assert keys == [f"p/{{i:03d}}" for i in range(25)] + ["q/marker/"], keys
prefixes = s3.list_objects_v2(Bucket="botobucket", Delimiter="/")["CommonPrefixes"]
assert [p["Prefix"] for p in prefixes] == ["p/", "q/"], prefixes
body = s3.get_object(Bucket="botobucket", Key="p/010", Range="bytes=2-4")["Body"].read()
assert body == b"vvv", body
etag = s3.head_object(Bucket="botobucket", Key="p/020")["ETag"]
try:
    s3.get_object(Bucket="botobucket", Key="p/020", IfMatch='"nope"')
    raise SystemExit("If-Match mismatch was not refused")
except botocore.exceptions.ClientError as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 412, e.response
assert s3.get_object(Bucket="botobucket", Key="p/020", IfMatch=etag)["ContentLength"] == 20
try:
    s3.get_object(Bucket="botobucket", Key="missing")
    raise SystemExit("missing key found")
except s3.exceptions.NoSuchKey:
    pass
try:
    s3.get_object(Bucket="botobucket", Key="p/001", Range="bytes=500-600")
    raise SystemExit("unsatisfiable range served")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidRange", e.response
bad = boto3.client("s3", endpoint_url="{self.srv.endpoint}", region_name="us-east-1",
                   aws_access_key_id="{harness.ACCESS_KEY}", aws_secret_access_key="wrong")
try:
    bad.list_objects_v2(Bucket="botobucket")
    raise SystemExit("wrong secret accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response
s3.delete_objects(Bucket="botobucket", Delete={{"Objects": [{{"Key": f"p/{{i:03d}}"}} for i in range(25)]}})
assert s3.list_objects_v2(Bucket="botobucket", Prefix="p/")["KeyCount"] == 0
print("boto3 session ok")
"""
        self.assertIn("boto3 session ok", self.run_ok(["/usr/bin/python3", "-c", script]))


if __name__ == "__main__":
    unittest.main()
