"""S3 semantics that clients and sync tools rely on, driven by boto3 (and,
where boto3 cannot say it, by requests signed with botocore) against the real
s3rdma-server. Each test names the behaviour S3 and radosgw have."""
import datetime
import email.utils
import hashlib
import http.client
import os
import socket
import sys
import time
import unittest

import boto3
import botocore
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

MiB = 1 << 20


class S3SemanticsTest(harness.MountTestCase):
    def setUp(self):
        super().setUp()
        self.srv = self.server()
        self.s3 = boto3.client("s3", endpoint_url=self.srv.endpoint, region_name="us-east-1",
                               aws_access_key_id=harness.ACCESS_KEY,
                               aws_secret_access_key=harness.SECRET_KEY,
                               config=botocore.config.Config(s3={"addressing_style": "path"},
                                                             retries={"max_attempts": 1}))
        self.s3.create_bucket(Bucket="sem")

    def raw(self, method, path, query="", headers=None, body=b"", conn=None):
        """One request signed as boto3 would sign it; (status, headers, body)."""
        target = path + ("?" + query if query else "")
        req = AWSRequest(method=method, url=self.srv.endpoint + target, data=body, headers=headers or {})
        S3SigV4Auth(Credentials(harness.ACCESS_KEY, harness.SECRET_KEY), "s3", "us-east-1").add_auth(req)
        c = conn or http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        c.request(method, target, body=body, headers=dict(req.headers.items()))
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def code_of(self, fn, *args, **kw):
        try:
            fn(*args, **kw)
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]
        self.fail(f"{fn.__name__} succeeded")

    def put(self, key, body=b"x", **kw):
        return self.s3.put_object(Bucket="sem", Key=key, Body=body, **kw)

    # ---- listing
    def test_listing_with_other_delimiters(self):
        for k in ["a-1", "a-2", "b-1", "c/x", "c/y", "d"]:
            self.put(k)
        for v2 in (True, False):
            ls = self.s3.list_objects_v2 if v2 else self.s3.list_objects
            r = ls(Bucket="sem", Delimiter="-")
            self.assertEqual([p["Prefix"] for p in r["CommonPrefixes"]], ["a-", "b-"], r)
            self.assertEqual([o["Key"] for o in r["Contents"]], ["c/x", "c/y", "d"], r)
            r = ls(Bucket="sem", Prefix="a", Delimiter="-")
            self.assertEqual([p["Prefix"] for p in r["CommonPrefixes"]], ["a-"], r)
            self.assertNotIn("Contents", r)
            r = ls(Bucket="sem", Delimiter="/x")  # more than one character
            self.assertEqual([p["Prefix"] for p in r["CommonPrefixes"]], ["c/x"], r)
            self.assertEqual([o["Key"] for o in r["Contents"]], ["a-1", "a-2", "b-1", "c/y", "d"], r)
        # Pages roll prefixes up across page boundaries.
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket="sem", Delimiter="-", PaginationConfig={"PageSize": 1})
        seen = [(p.get("CommonPrefixes", []), p.get("Contents", [])) for p in pages]
        prefixes = [x["Prefix"] for cps, _ in seen for x in cps]
        keys = [x["Key"] for _, cs in seen for x in cs]
        self.assertEqual((prefixes, keys), (["a-", "b-"], ["c/x", "c/y", "d"]))

    def test_v1_listing_echoes_prefix_as_given(self):
        self.put("dir with space/f")
        status, _, body = self.raw("GET", "/sem", "prefix=dir%20with%20space%2F")
        self.assertEqual(status, 200, body)
        self.assertIn(b"<Prefix>dir with space/</Prefix>", body)
        # Even with encoding-type=url: S3 encodes the keys, markers and
        # delimiter of a v1 listing, not its Prefix (SDKs decode only those;
        # s3-tests' test_bucket_list_prefix_unreadable holds radosgw to it).
        status, _, body = self.raw("GET", "/sem", "encoding-type=url&prefix=dir%20with%20space%2F")
        self.assertIn(b"<Prefix>dir with space/</Prefix>", body)
        self.assertIn(b"<Key>dir%20with%20space/f</Key>", body)
        r = self.s3.list_objects(Bucket="sem", Prefix="\n")  # boto3 asks for encoding-type=url
        self.assertEqual(r["Prefix"], "\n")
        # v1 lists every object's Owner; v2 only with fetch-owner=true.
        self.assertEqual(self.s3.list_objects(Bucket="sem")["Contents"][0]["Owner"]["ID"], "s3rdma")
        self.assertNotIn("Owner", self.s3.list_objects_v2(Bucket="sem")["Contents"][0])
        self.assertEqual(self.s3.list_objects_v2(Bucket="sem", FetchOwner=True)["Contents"][0]["Owner"],
                         {"ID": "s3rdma", "DisplayName": "s3rdma"})

    def test_key_that_is_both_object_and_prefix(self):
        self.put("foo/bar", b"parent")
        self.put("foo/bar/xyzzy", b"child")  # NoSuchKey on the old server
        self.put("solo/child", b"c")
        self.put("solo", b"p")  # the other order
        for k, v in [("foo/bar", b"parent"), ("foo/bar/xyzzy", b"child"), ("solo", b"p"), ("solo/child", b"c")]:
            self.assertEqual(self.s3.get_object(Bucket="sem", Key=k)["Body"].read(), v, k)
            self.assertEqual(self.s3.head_object(Bucket="sem", Key=k)["ContentLength"], len(v), k)
        flat = [o["Key"] for o in self.s3.list_objects_v2(Bucket="sem")["Contents"]]
        self.assertEqual(flat, ["foo/bar", "foo/bar/xyzzy", "solo", "solo/child"])
        r = self.s3.list_objects_v2(Bucket="sem", Prefix="foo/", Delimiter="/")
        self.assertEqual([o["Key"] for o in r["Contents"]], ["foo/bar"])
        self.assertEqual([p["Prefix"] for p in r["CommonPrefixes"]], ["foo/bar/"])
        page = self.s3.list_objects_v2(Bucket="sem", StartAfter="foo/bar")
        self.assertEqual([o["Key"] for o in page["Contents"]], ["foo/bar/xyzzy", "solo", "solo/child"])
        self.put("foo/bar", b"parent v2")  # overwrite in place
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="foo/bar")["Body"].read(), b"parent v2")
        self.s3.delete_object(Bucket="sem", Key="foo/bar")
        self.assertEqual(self.code_of(self.s3.head_object, Bucket="sem", Key="foo/bar"), "404")
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="foo/bar/xyzzy")["Body"].read(), b"child")
        self.s3.delete_object(Bucket="sem", Key="solo/child")
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="solo")["Body"].read(), b"p")
        flat = [o["Key"] for o in self.s3.list_objects_v2(Bucket="sem")["Contents"]]
        self.assertEqual(flat, ["foo/bar/xyzzy", "solo"])
        # A directory marker beside an object of the same name.
        self.put("m", b"obj")
        self.put("m/", b"")
        flat = [o["Key"] for o in self.s3.list_objects_v2(Bucket="sem", Prefix="m")["Contents"]]
        self.assertEqual(flat, ["m", "m/"])
        self.s3.copy_object(Bucket="sem", Key="foo/bar", CopySource="sem/solo")  # copy onto a prefix
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="foo/bar")["Body"].read(), b"p")

    # ---- headers
    def test_standard_headers_are_kept_and_overridable(self):
        kw = dict(ContentType="text/csv", CacheControl="max-age=60", ContentEncoding="identity",
                  ContentDisposition='attachment; filename="x.csv"', ContentLanguage="de",
                  Expires=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc),
                  Metadata={"k": "v"})
        self.put("h", b"a,b\n", **kw)
        for r in (self.s3.head_object(Bucket="sem", Key="h"), self.s3.get_object(Bucket="sem", Key="h")):
            self.assertEqual(r["ContentType"], "text/csv")
            self.assertEqual(r["CacheControl"], "max-age=60")
            self.assertEqual(r["ContentEncoding"], "identity")
            self.assertEqual(r["ContentDisposition"], 'attachment; filename="x.csv"')
            self.assertEqual(r["ContentLanguage"], "de")
            self.assertEqual(r["ResponseMetadata"]["HTTPHeaders"]["expires"], "Tue, 01 Jan 2030 00:00:00 GMT")
            self.assertEqual(r["Metadata"], {"k": "v"})
        r = self.s3.get_object(Bucket="sem", Key="h", ResponseContentType="application/json",
                               ResponseCacheControl="no-cache", ResponseContentDisposition="inline",
                               ResponseContentEncoding="gzip", ResponseContentLanguage="fr",
                               ResponseExpires=datetime.datetime(2031, 1, 1, tzinfo=datetime.timezone.utc))
        self.assertEqual((r["ContentType"], r["CacheControl"], r["ContentDisposition"], r["ContentEncoding"],
                          r["ContentLanguage"]), ("application/json", "no-cache", "inline", "gzip", "fr"))
        self.assertEqual(r["ResponseMetadata"]["HTTPHeaders"]["expires"], "Wed, 01 Jan 2031 00:00:00 GMT")
        self.s3.copy_object(Bucket="sem", Key="h2", CopySource="sem/h")
        self.assertEqual(self.s3.head_object(Bucket="sem", Key="h2")["CacheControl"], "max-age=60")
        mp = self.s3.create_multipart_upload(Bucket="sem", Key="h3", CacheControl="no-store", ContentLanguage="en")
        e = self.s3.upload_part(Bucket="sem", Key="h3", UploadId=mp["UploadId"], PartNumber=1, Body=b"z")["ETag"]
        self.s3.complete_multipart_upload(Bucket="sem", Key="h3", UploadId=mp["UploadId"],
                                          MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
        h = self.s3.head_object(Bucket="sem", Key="h3")
        self.assertEqual((h["CacheControl"], h["ContentLanguage"]), ("no-store", "en"))

    # ---- conditionals
    def test_time_conditionals_on_get_head_and_copy(self):
        self.put("t", b"timed")
        past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        for fn in (self.s3.get_object, self.s3.head_object):
            self.assertEqual(fn(Bucket="sem", Key="t", IfModifiedSince=past)["ContentLength"], 5)
            self.assertEqual(self.code_of(fn, Bucket="sem", Key="t", IfModifiedSince=future), "304")
            self.assertEqual(fn(Bucket="sem", Key="t", IfUnmodifiedSince=future)["ContentLength"], 5)
            self.assertIn(self.code_of(fn, Bucket="sem", Key="t", IfUnmodifiedSince=past),
                          ("412", "PreconditionFailed"))
        etag = self.s3.head_object(Bucket="sem", Key="t")["ETag"]
        # If-Match that holds wins over If-Unmodified-Since that does not (RFC 7232, S3 too).
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="t", IfMatch=etag, IfUnmodifiedSince=past)
                         ["ContentLength"], 5)
        copy = self.s3.copy_object
        src = "sem/t"
        self.assertEqual(self.code_of(copy, Bucket="sem", Key="c", CopySource=src, CopySourceIfNoneMatch=etag),
                         "PreconditionFailed")
        self.assertEqual(self.code_of(copy, Bucket="sem", Key="c", CopySource=src, CopySourceIfModifiedSince=future),
                         "PreconditionFailed")
        self.assertEqual(self.code_of(copy, Bucket="sem", Key="c", CopySource=src, CopySourceIfUnmodifiedSince=past),
                         "PreconditionFailed")
        self.assertEqual(self.code_of(copy, Bucket="sem", Key="c", CopySource=src, CopySourceIfMatch='"other"'),
                         "PreconditionFailed")
        self.assertEqual(self.code_of(self.s3.head_object, Bucket="sem", Key="c"), "404")
        copy(Bucket="sem", Key="c", CopySource=src, CopySourceIfModifiedSince=past, CopySourceIfNoneMatch='"other"')
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="c")["Body"].read(), b"timed")

    def test_conditional_puts(self):
        status, _, _ = self.raw("PUT", "/sem/lock", headers={"If-None-Match": "*"}, body=b"mine")
        self.assertEqual(status, 200)
        status, _, body = self.raw("PUT", "/sem/lock", headers={"If-None-Match": "*"}, body=b"theirs")
        self.assertEqual(status, 412, body)
        self.assertIn(b"<Code>PreconditionFailed</Code>", body)
        etag = self.s3.head_object(Bucket="sem", Key="lock")["ETag"]
        status, _, _ = self.raw("PUT", "/sem/lock", headers={"If-Match": '"0123"'}, body=b"theirs")
        self.assertEqual(status, 412)
        status, _, _ = self.raw("PUT", "/sem/lock", headers={"If-Match": etag}, body=b"v2")
        self.assertEqual(status, 200)
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="lock")["Body"].read(), b"v2")

    # ---- multipart
    def complete(self, key, uid, parts):
        return self.s3.complete_multipart_upload(
            Bucket="sem", Key=key, UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})

    def test_multipart_listing_retry_repeats_and_part_reads(self):
        a = self.s3.create_multipart_upload(Bucket="sem", Key="up/a")["UploadId"]
        b = self.s3.create_multipart_upload(Bucket="sem", Key="up/b")["UploadId"]
        other = self.s3.create_multipart_upload(Bucket="sem", Key="zz")["UploadId"]
        listed = self.s3.list_multipart_uploads(Bucket="sem", Prefix="up/")
        self.assertEqual([(u["Key"], u["UploadId"]) for u in listed["Uploads"]], [("up/a", a), ("up/b", b)])
        self.assertIn("Initiated", listed["Uploads"][0])
        every = self.s3.list_multipart_uploads(Bucket="sem")["Uploads"]
        self.assertEqual(sorted(u["UploadId"] for u in every), sorted([a, b, other]))
        page = self.s3.list_multipart_uploads(Bucket="sem", MaxUploads=1)
        self.assertTrue(page["IsTruncated"])
        rest = self.s3.list_multipart_uploads(Bucket="sem", KeyMarker=page["NextKeyMarker"],
                                              UploadIdMarker=page["NextUploadIdMarker"])
        self.assertEqual(len(page["Uploads"]) + len(rest["Uploads"]), 3)
        p1, p2 = os.urandom(5 * MiB), os.urandom(1000)
        e1 = self.s3.upload_part(Bucket="sem", Key="up/a", UploadId=a, PartNumber=1, Body=p1)["ETag"]
        e2 = self.s3.upload_part(Bucket="sem", Key="up/a", UploadId=a, PartNumber=2, Body=p2)["ETag"]
        first = self.complete("up/a", a, [(1, e1), (2, e2)])
        again = self.complete("up/a", a, [(1, e1), (2, e2)])  # a retry after a lost reply
        self.assertEqual(first["ETag"], again["ETag"])
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="up/a")["Body"].read(), p1 + p2)
        self.assertNotIn(a, [u["UploadId"] for u in self.s3.list_multipart_uploads(Bucket="sem").get("Uploads", [])])
        r = self.s3.get_object(Bucket="sem", Key="up/a", PartNumber=2)
        self.assertEqual(r["Body"].read(), p2)
        self.assertEqual(r["PartsCount"], 2)
        self.assertEqual(r["ContentRange"], f"bytes {len(p1)}-{len(p1) + len(p2) - 1}/{len(p1) + len(p2)}")
        self.assertEqual(self.s3.head_object(Bucket="sem", Key="up/a", PartNumber=1)["ContentLength"], len(p1))
        self.assertEqual(self.code_of(self.s3.get_object, Bucket="sem", Key="up/a", PartNumber=3), "InvalidPartNumber")
        # A repeated part number names the same part once, by its last entry:
        # part 1 uploaded again supersedes the ETag listed first.
        stale = self.s3.upload_part(Bucket="sem", Key="up/b", UploadId=b, PartNumber=1, Body=p2)["ETag"]
        e1 = self.s3.upload_part(Bucket="sem", Key="up/b", UploadId=b, PartNumber=1, Body=p1)["ETag"]
        e2 = self.s3.upload_part(Bucket="sem", Key="up/b", UploadId=b, PartNumber=2, Body=p2)["ETag"]
        self.complete("up/b", b, [(1, stale), (1, e1), (2, e2)])
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="up/b")["Body"].read(), p1 + p2)
        # A single-part object: ?partNumber=1 is the whole object.
        self.put("single", b"whole")
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="single", PartNumber=1)["Body"].read(), b"whole")

    # ---- checksums
    def test_additional_checksums(self):
        import base64
        body = b"123456789"  # the CRC catalogue's check input
        sums = {"crc32": "y/Q5Jg==", "crc32c": "4waSgw==", "crc64nvme": "rosUhgp5mIg=",
                "sha1": base64.b64encode(hashlib.sha1(body).digest()).decode(),
                "sha256": base64.b64encode(hashlib.sha256(body).digest()).decode()}
        for algo, value in sums.items():
            status, headers, reply = self.raw("PUT", f"/sem/c-{algo}", headers={f"x-amz-checksum-{algo}": value},
                                              body=body)
            self.assertEqual(status, 200, (algo, reply))
            self.assertEqual(headers.get(f"x-amz-checksum-{algo}"), value, algo)
            h = self.s3.head_object(Bucket="sem", Key=f"c-{algo}", ChecksumMode="ENABLED")
            self.assertEqual(h["ResponseMetadata"]["HTTPHeaders"].get(f"x-amz-checksum-{algo}"), value, algo)
            plain = self.s3.head_object(Bucket="sem", Key=f"c-{algo}")
            self.assertNotIn(f"x-amz-checksum-{algo}", plain["ResponseMetadata"]["HTTPHeaders"])
            status, _, reply = self.raw("PUT", f"/sem/bad-{algo}", headers={f"x-amz-checksum-{algo}": sums["crc32"]
                                        if algo != "crc32" else sums["crc32c"]}, body=body)
            self.assertEqual(status, 400, algo)
            self.assertIn(b"<Code>BadDigest</Code>", reply)
        self.assertEqual(self.code_of(self.s3.head_object, Bucket="sem", Key="bad-crc32"), "404")
        # The algorithm alone: the server computes and keeps it.
        status, headers, _ = self.raw("PUT", "/sem/c-auto", headers={"x-amz-sdk-checksum-algorithm": "CRC32C"},
                                      body=body)
        self.assertEqual(headers.get("x-amz-checksum-crc32c"), sums["crc32c"])
        # A part is checked too.
        uid = self.s3.create_multipart_upload(Bucket="sem", Key="cp")["UploadId"]
        status, _, reply = self.raw("PUT", "/sem/cp", f"partNumber=1&uploadId={uid}",
                                    headers={"x-amz-checksum-crc32": sums["crc32c"]}, body=body)
        self.assertIn(b"<Code>BadDigest</Code>", reply)
        self.assertEqual(self.s3.list_parts(Bucket="sem", Key="cp", UploadId=uid).get("Parts", []), [])
        status, _, reply = self.raw("PUT", "/sem/two", headers={"x-amz-checksum-crc32": sums["crc32"],
                                                                "x-amz-checksum-sha1": sums["sha1"]}, body=body)
        self.assertEqual(status, 400)
        self.assertIn(b"<Code>InvalidRequest</Code>", reply)

    # ---- aws-chunked bodies (what current SDKs send)
    def chunked_put(self, key, chunks, signed, trailer=None, tamper=False):
        """PUT `chunks` as an aws-chunked body; `trailer`: (algorithm, value)."""
        return harness.aws_chunked_put(self.srv.port, f"/sem/{key}", chunks, signed=signed, trailer=trailer,
                                       forge_at=len(chunks) if tamper else None)

    def test_multipart_checksums_composite_and_full_object(self):
        import base64
        import zlib
        b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
        p1, p2 = b"A" * (5 * MiB), b"B" * 1000
        # COMPOSITE SHA-256 (boto3's own parameters): the digest of the parts' digests, "-2".
        r = self.s3.create_multipart_upload(Bucket="sem", Key="mc/sha", ChecksumAlgorithm="SHA256")
        self.assertEqual(r["ChecksumAlgorithm"], "SHA256")
        up = r["UploadId"]
        parts = []
        for n, body in ((1, p1), (2, p2)):
            r = self.s3.upload_part(Bucket="sem", Key="mc/sha", UploadId=up, PartNumber=n, Body=body,
                                    ChecksumAlgorithm="SHA256")
            self.assertEqual(r["ChecksumSHA256"], b64(hashlib.sha256(body).digest()))
            parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
        listed = self.s3.list_parts(Bucket="sem", Key="mc/sha", UploadId=up)["Parts"]
        self.assertEqual([p["ChecksumSHA256"] for p in listed], [p["ChecksumSHA256"] for p in parts])
        composite = b64(hashlib.sha256(hashlib.sha256(p1).digest() + hashlib.sha256(p2).digest()).digest()) + "-2"
        self.assertEqual(self.code_of(self.s3.complete_multipart_upload, Bucket="sem", Key="mc/sha", UploadId=up,
                                      ChecksumSHA256=b64(b"x" * 32), MultipartUpload={"Parts": parts}), "BadDigest")
        lying = [dict(parts[0], ChecksumSHA256=parts[1]["ChecksumSHA256"]), parts[1]]
        self.assertEqual(self.code_of(self.s3.complete_multipart_upload, Bucket="sem", Key="mc/sha", UploadId=up,
                                      MultipartUpload={"Parts": lying}), "InvalidPart")
        self.assertEqual(self.code_of(self.s3.head_object, Bucket="sem", Key="mc/sha"), "404")
        done = self.s3.complete_multipart_upload(Bucket="sem", Key="mc/sha", UploadId=up, ChecksumSHA256=composite,
                                                 MultipartUpload={"Parts": parts})
        self.assertEqual(done["ChecksumSHA256"], composite)
        again = self.s3.complete_multipart_upload(Bucket="sem", Key="mc/sha", UploadId=up,
                                                  MultipartUpload={"Parts": parts})
        self.assertEqual((again["ETag"], again["ChecksumSHA256"]), (done["ETag"], composite), "a retried Complete")
        self.assertNotIn("ChecksumSHA256", self.s3.head_object(Bucket="sem", Key="mc/sha"))
        h = self.s3.head_object(Bucket="sem", Key="mc/sha", ChecksumMode="ENABLED")
        self.assertEqual(h["ChecksumSHA256"], composite)
        self.assertEqual(h["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"], "COMPOSITE")
        g = self.s3.get_object(Bucket="sem", Key="mc/sha", PartNumber=2, ChecksumMode="ENABLED")
        self.assertEqual((g["Body"].read(), g["ChecksumSHA256"]), (p2, parts[1]["ChecksumSHA256"]))
        # A part with another algorithm than the upload's is refused.
        self.assertEqual(self.code_of(self.s3.upload_part, Bucket="sem", Key="mc/sha2", PartNumber=1, Body=p2,
                                      UploadId=self.s3.create_multipart_upload(
                                          Bucket="sem", Key="mc/sha2", ChecksumAlgorithm="SHA256")["UploadId"],
                                      ChecksumAlgorithm="CRC32"), "InvalidRequest")

        # FULL_OBJECT CRC32 (the type boto3 1.26 cannot name: signed by hand): the CRC of
        # all the bytes; parts sent without a checksum get the upload's.
        status, headers, body = self.raw("POST", "/sem/mc/crc", "uploads",
                                         headers={"x-amz-checksum-algorithm": "CRC32",
                                                  "x-amz-checksum-type": "FULL_OBJECT"})
        self.assertEqual(status, 200, body)
        self.assertEqual((headers["x-amz-checksum-algorithm"], headers["x-amz-checksum-type"]),
                         ("CRC32", "FULL_OBJECT"))
        up = body.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
        etags = [self.s3.upload_part(Bucket="sem", Key="mc/crc", UploadId=up, PartNumber=n, Body=b)["ETag"]
                 for n, b in ((1, p1), (2, p2))]
        whole = b64(zlib.crc32(p1 + p2).to_bytes(4, "big"))
        done = self.s3.complete_multipart_upload(
            Bucket="sem", Key="mc/crc", UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]})
        self.assertEqual(done["ChecksumCRC32"], whole)
        h = self.s3.head_object(Bucket="sem", Key="mc/crc", ChecksumMode="ENABLED")
        self.assertEqual(h["ChecksumCRC32"], whole)
        self.assertEqual(h["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"], "FULL_OBJECT")

        # CRC64NVME is full-object by default; three 5 MiB parts of "A", "B", "C" have
        # published check values (ceph/s3-tests' multipart checksum cases).
        status, headers, body = self.raw("POST", "/sem/mc/nvme", "uploads",
                                         headers={"x-amz-checksum-algorithm": "CRC64NVME"})
        self.assertEqual((status, headers.get("x-amz-checksum-type")), (200, "FULL_OBJECT"), body)
        up = body.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
        xml = "<CompleteMultipartUpload>"
        for n, (c, part_sum) in enumerate((("A", "L/E4WYn8v98="), ("B", "xW1l19VobYM="), ("C", "cK5MnNaWrW4=")), 1):
            status, headers, body = self.raw("PUT", "/sem/mc/nvme", f"partNumber={n}&uploadId={up}",
                                             headers={"x-amz-checksum-crc64nvme": part_sum},
                                             body=c.encode() * (5 * MiB))
            self.assertEqual(status, 200, body)
            xml += (f"<Part><PartNumber>{n}</PartNumber><ETag>{headers['etag']}</ETag>"
                    f"<ChecksumCRC64NVME>{part_sum}</ChecksumCRC64NVME></Part>")
        xml += "</CompleteMultipartUpload>"
        status, _, body = self.raw("POST", "/sem/mc/nvme", f"uploadId={up}",
                                   headers={"x-amz-checksum-crc64nvme": "i+6LR0y3eFo="}, body=xml.encode())
        self.assertEqual(status, 200, body)
        self.assertIn(b"<ChecksumCRC64NVME>i+6LR0y3eFo=</ChecksumCRC64NVME>", body)
        self.assertIn(b"<ChecksumType>FULL_OBJECT</ChecksumType>", body)
        # Pairs S3 does not have.
        for algorithm, kind in (("CRC64NVME", "COMPOSITE"), ("SHA1", "FULL_OBJECT"), ("MD5", "COMPOSITE")):
            status, _, body = self.raw("POST", "/sem/mc/x", "uploads",
                                       headers={"x-amz-checksum-algorithm": algorithm, "x-amz-checksum-type": kind})
            self.assertEqual(status, 400, (algorithm, kind))
            self.assertIn(b"<Code>InvalidRequest</Code>", body)

    def test_aws_chunked_bodies(self):
        chunks = [b"a" * 70000, b"b" * 123, b"c"]
        whole = b"".join(chunks)
        import base64
        import zlib
        crc = base64.b64encode(zlib.crc32(whole).to_bytes(4, "big")).decode()
        for signed in (False, True):
            status, headers, reply = self.chunked_put(f"ch-{signed}", chunks, signed, trailer=("crc32", crc))
            self.assertEqual(status, 200, reply)
            self.assertEqual(self.s3.get_object(Bucket="sem", Key=f"ch-{signed}")["Body"].read(), whole)
            self.assertEqual(headers.get("x-amz-checksum-crc32"), crc)
        status, _, reply = self.chunked_put("ch-plain", chunks, True)  # signed, no trailer
        self.assertEqual(status, 200, reply)
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="ch-plain")["Body"].read(), whole)
        # A wrong trailer checksum, a forged chunk signature: refused, nothing stored.
        status, _, reply = self.chunked_put("ch-bad", chunks, False, trailer=("crc32", "AAAAAA=="))
        self.assertIn(b"<Code>BadDigest</Code>", reply)
        status, _, reply = self.chunked_put("ch-forged", chunks, True, tamper=True)
        self.assertEqual(status, 403, reply)
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", reply)
        for k in ("ch-bad", "ch-forged"):
            self.assertEqual(self.code_of(self.s3.head_object, Bucket="sem", Key=k), "404")

    # ---- buckets
    def test_bucket_listing_and_location(self):
        before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
        self.s3.create_bucket(Bucket="sem-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        self.s3.create_bucket(Bucket="sem-z")
        buckets = self.s3.list_buckets()["Buckets"]  # "bucket" is the harness's own
        self.assertEqual([b["Name"] for b in buckets], ["bucket", "sem", "sem-eu", "sem-z"])
        for b in buckets:
            self.assertGreater(b["CreationDate"], before, b)
        self.assertEqual(self.s3.get_bucket_location(Bucket="sem-eu")["LocationConstraint"], "eu-west-1")
        self.assertIsNone(self.s3.get_bucket_location(Bucket="sem-z")["LocationConstraint"])
        status, _, body = self.raw("GET", "/", "max-buckets=2")
        self.assertEqual(status, 200, body)
        self.assertEqual(body.count(b"<Bucket>"), 2, body)
        self.assertIn(b"<ContinuationToken>", body)
        token = body.split(b"<ContinuationToken>")[1].split(b"</ContinuationToken>")[0].decode()
        status, _, body = self.raw("GET", "/", "continuation-token=" + token + "&max-buckets=2")
        self.assertEqual(body.count(b"<Bucket>"), 2, body)
        self.assertIn(b"<Name>sem-z</Name>", body)
        self.assertNotIn(b"<ContinuationToken>", body)
        status, _, body = self.raw("GET", "/", "max-buckets=0")
        self.assertEqual(status, 400, body)

    def test_bucket_recreate_and_subresources_it_does_not_keep(self):
        self.put("stays", b"1")
        self.s3.create_bucket(Bucket="sem")  # us-east-1: 200, the bucket kept as it was
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="stays")["Body"].read(), b"1")
        # A bucket subresource this server does not keep is NotImplemented,
        # never taken for a CreateBucket that "succeeds".
        code = self.code_of(self.s3.put_bucket_versioning, Bucket="sem",
                            VersioningConfiguration={"Status": "Enabled"})
        self.assertEqual(code, "NotImplemented")
        self.assertEqual(self.code_of(self.s3.delete_bucket_cors, Bucket="sem"), "NotImplemented")
        self.assertNotIn("Status", self.s3.get_bucket_versioning(Bucket="sem"))

    # ---- access: canned ACLs, anonymous requests, presigned URLs
    def anonymous(self, method, target, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        c.request(method, target, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()

    def test_canned_acls_and_anonymous_access(self):
        self.put("private", b"p")
        self.put("public", b"pub", ACL="public-read")
        self.assertEqual(self.anonymous("GET", "/sem/private")[0], 403)
        self.assertEqual(self.anonymous("GET", "/sem/public"), (200, b"pub"))
        self.assertEqual(self.anonymous("GET", "/sem")[0], 403, "the bucket is private: no listing")
        self.assertEqual(self.anonymous("GET", "/sem/absent")[0], 403, "nor learning what is absent")
        status, body = self.anonymous("GET", "/gone/x")
        self.assertEqual(status, 404)
        self.assertIn(b"<Code>NoSuchBucket</Code>", body)
        self.assertEqual(self.anonymous("PUT", "/sem/anon", b"a")[0], 403)
        # The object's ACL reads back, and is no header of the object.
        grants = self.s3.get_object_acl(Bucket="sem", Key="public")["Grants"]
        self.assertIn({"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                       "Permission": "READ"}, grants)
        self.assertNotIn("x-amz-acl", self.s3.head_object(Bucket="sem", Key="public")["ResponseMetadata"]["HTTPHeaders"])
        self.assertEqual(len(self.s3.get_object_acl(Bucket="sem", Key="private")["Grants"]), 1)
        # PUT ?acl changes the ACL only (the bytes and metadata stay), by name or by policy.
        self.s3.put_object_acl(Bucket="sem", Key="public", ACL="private")
        self.assertEqual(self.anonymous("GET", "/sem/public")[0], 403)
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="public")["Body"].read(), b"pub")
        policy = self.s3.get_bucket_acl(Bucket="sem")
        policy["Grants"].append({"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                 "Permission": "READ"})
        self.s3.put_bucket_acl(Bucket="sem", AccessControlPolicy={"Grants": policy["Grants"], "Owner": policy["Owner"]})
        status, body = self.anonymous("GET", "/sem")
        self.assertEqual(status, 200, body)
        self.assertIn(b"<Key>private</Key>", body)
        status, body = self.anonymous("GET", "/sem/absent")
        self.assertEqual(status, 404, "a listable bucket tells what is absent")
        self.assertIn(b"<Code>NoSuchKey</Code>", body)
        # public-read-write: anonymous writes and deletes (100-continue answered first).
        self.s3.put_bucket_acl(Bucket="sem", ACL="public-read-write")
        self.assertEqual(self.anonymous("PUT", "/sem/anon", b"a", {"Expect": "100-continue"})[0], 200)
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="anon")["Body"].read(), b"a")
        self.assertEqual(self.anonymous("DELETE", "/sem/anon")[0], 204)
        self.assertEqual(self.anonymous("GET", "/sem", headers={})[0], 200)
        self.assertEqual(self.anonymous("GET", "/sem?acl")[0], 403, "an ACL is the owner's to read")
        # Every bucket here is the one owner's.
        self.s3.list_objects(Bucket="sem", ExpectedBucketOwner="s3rdma")
        self.assertEqual(self.code_of(self.s3.list_objects, Bucket="sem", ExpectedBucketOwner="other"),
                         "AccessDenied")
        # Grants to other users, and names that are no canned ACL, say so.
        self.assertEqual(self.code_of(self.put, "g", GrantRead='id="someone"'), "NotImplemented")
        self.assertEqual(self.code_of(self.put, "g", ACL="everyone"), "InvalidArgument")
        # A copy takes the ACL its request names, not the source's.
        self.s3.put_object_acl(Bucket="sem", Key="public", ACL="public-read")
        self.s3.copy_object(Bucket="sem", Key="copied", CopySource="sem/public")
        self.assertEqual(self.anonymous("GET", "/sem/copied")[0], 403)
        self.s3.copy_object(Bucket="sem", Key="copied", CopySource="sem/private", ACL="public-read")
        self.assertEqual(self.anonymous("GET", "/sem/copied"), (200, b"p"))

    def test_presigned_urls_and_preflights(self):
        self.put("shared", b"shared bytes")
        # boto3's default presigned URL is SigV2 (AWSAccessKeyId, Expires, Signature).
        v2 = self.s3.generate_presigned_url("get_object", Params={"Bucket": "sem", "Key": "shared"}, ExpiresIn=300)
        self.assertIn("AWSAccessKeyId=", v2)
        self.assertEqual(self.anonymous("GET", v2[len(self.srv.endpoint):]), (200, b"shared bytes"))
        status, body = self.anonymous("GET", v2[len(self.srv.endpoint):].replace("shared?", "sharex?"))
        self.assertIn(b"SignatureDoesNotMatch", body)
        self.s3 = boto3.client("s3", endpoint_url=self.srv.endpoint, region_name="us-east-1",
                               aws_access_key_id=harness.ACCESS_KEY, aws_secret_access_key=harness.SECRET_KEY,
                               config=botocore.config.Config(signature_version="s3v4",
                                                             s3={"addressing_style": "path"}))
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": "sem", "Key": "shared"}, ExpiresIn=300)
        self.assertIn("X-Amz-Signature=", url)
        target = url[len(self.srv.endpoint):]
        self.assertEqual(self.anonymous("GET", target), (200, b"shared bytes"))
        status, body = self.anonymous("GET", target.replace("shared?", "sharex?"))
        self.assertEqual(status, 403)
        self.assertIn(b"SignatureDoesNotMatch", body)
        put = self.s3.generate_presigned_url("put_object", Params={"Bucket": "sem", "Key": "up"}, ExpiresIn=300)
        self.assertEqual(self.anonymous("PUT", put[len(self.srv.endpoint):], b"uploaded")[0], 200)
        self.assertEqual(self.s3.get_object(Bucket="sem", Key="up")["Body"].read(), b"uploaded")
        # An expired URL, and one asking for more than 7 days.
        from botocore.auth import S3SigV4QueryAuth
        old = AWSRequest(method="GET", url=self.srv.endpoint + "/sem/shared")
        signer = S3SigV4QueryAuth(Credentials(harness.ACCESS_KEY, harness.SECRET_KEY), "s3", "us-east-1", expires=1)

        minute_ago = datetime.datetime.utcnow() - datetime.timedelta(seconds=60)

        class Past(datetime.datetime):  # signed a minute ago, good for one second
            @classmethod
            def utcnow(cls):
                return minute_ago
        import unittest.mock
        with unittest.mock.patch("botocore.auth.datetime.datetime", Past):
            signer.add_auth(old)
        status, body = self.anonymous("GET", old.url[len(self.srv.endpoint):])
        self.assertEqual(status, 403, body)
        self.assertIn(b"Request has expired", body)
        long = self.s3.generate_presigned_url("get_object", Params={"Bucket": "sem", "Key": "shared"},
                                              ExpiresIn=604801)
        status, body = self.anonymous("GET", long[len(self.srv.endpoint):])
        self.assertEqual(status, 403, body)
        self.assertIn(b"X-Amz-Expires must be between 1 and 604800", body)
        # CORS preflights: none allowed (no bucket has a CORS configuration).
        self.assertEqual(self.anonymous("OPTIONS", target)[0], 400)
        self.assertEqual(self.anonymous("OPTIONS", "/sem/shared", headers={
            "Origin": "http://example.com", "Access-Control-Request-Method": "GET"})[0], 403)

    def test_aws_chunked_is_no_content_encoding_of_the_object(self):
        for sent, kept in (("gzip, aws-chunked", "gzip"), ("aws-chunked", None)):
            self.s3.put_object(Bucket="sem", Key="enc", Body=b"z", ContentEncoding=sent)
            self.assertEqual(self.s3.head_object(Bucket="sem", Key="enc").get("ContentEncoding"), kept, sent)

    # ---- multi-delete
    def test_delete_objects_limits_and_whitespace_keys(self):
        self.put(" ", b"space")
        self.put("  x ", b"spaces")
        r = self.s3.delete_objects(Bucket="sem", Delete={"Objects": [{"Key": " "}, {"Key": "  x "}]})
        self.assertEqual(sorted(d["Key"] for d in r["Deleted"]), [" ", "  x "])
        self.assertNotIn("Contents", self.s3.list_objects_v2(Bucket="sem"))
        code = self.code_of(self.s3.delete_objects, Bucket="sem",
                            Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
        self.assertEqual(code, "MalformedXML")

    # ---- versions
    def test_versions_listing_of_an_unversioned_bucket(self):
        self.put("v/a", b"1")
        self.put("v/b/c", b"22")
        r = self.s3.list_object_versions(Bucket="sem")
        self.assertEqual([(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in r["Versions"]],
                         [("v/a", "null", True, 1), ("v/b/c", "null", True, 2)])
        self.assertNotIn("DeleteMarkers", r)
        r = self.s3.list_object_versions(Bucket="sem", Prefix="v/", Delimiter="/")
        self.assertEqual([v["Key"] for v in r["Versions"]], ["v/a"])
        self.assertEqual([p["Prefix"] for p in r["CommonPrefixes"]], ["v/b/"])
        page = self.s3.list_object_versions(Bucket="sem", MaxKeys=1)
        self.assertTrue(page["IsTruncated"])
        rest = self.s3.list_object_versions(Bucket="sem", KeyMarker=page["NextKeyMarker"])
        self.assertEqual([v["Key"] for v in rest["Versions"]], ["v/b/c"])
        status, _, body = self.raw("GET", "/sem", "versioning")
        self.assertEqual(status, 200, body)
        self.assertIn(b"VersioningConfiguration", body)

    # ---- error codes
    def test_error_codes(self):
        for name in ("a", "ab"):
            status, _, body = self.raw("PUT", "/" + name)
            self.assertEqual(status, 400)
            self.assertIn(b"<Code>InvalidBucketName</Code>", body)
        for md5 in ("abc", ""):
            status, _, body = self.raw("PUT", "/sem/d", headers={"Content-MD5": md5}, body=b"data")
            self.assertEqual(status, 400, md5)
            self.assertIn(b"<Code>InvalidDigest</Code>", body, md5)
        import base64
        wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        status, _, body = self.raw("PUT", "/sem/d", headers={"Content-MD5": wrong}, body=b"data")
        self.assertIn(b"<Code>BadDigest</Code>", body)
        self.put("src", b"0123456789")
        uid = self.s3.create_multipart_upload(Bucket="sem", Key="dst")["UploadId"]
        code = self.code_of(self.s3.upload_part_copy, Bucket="sem", Key="dst", UploadId=uid, PartNumber=1,
                            CopySource="sem/src", CopySourceRange="bytes=5-20")
        self.assertEqual(code, "InvalidRange")
        for malformed in ("0-2", "bytes=0", "bytes=hello-world", "bytes=0-bar", "bytes=0-2,3-5", "bytes=4-1"):
            code = self.code_of(self.s3.upload_part_copy, Bucket="sem", Key="dst", UploadId=uid, PartNumber=1,
                                CopySource="sem/src", CopySourceRange=malformed)
            self.assertEqual(code, "InvalidArgument", malformed)
        for length in ("-1", ""):
            with socket.create_connection(("127.0.0.1", self.srv.port), timeout=10) as s:
                s.sendall(f"PUT /sem/neg HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
                reply = s.recv(65536)
            self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply)
            self.assertIn(b"<Error>", reply, reply)
        # A bad request does not cost the connection.
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        status, headers, _ = self.raw("PUT", "/sem/d", headers={"Content-MD5": "abc"}, body=b"data", conn=conn)
        self.assertEqual(status, 400)
        self.assertNotEqual(headers.get("connection"), "close")
        sock = conn.sock
        status, _, _ = self.raw("PUT", "/sem/d", body=b"data", conn=conn)
        self.assertEqual(status, 200)
        self.assertIs(conn.sock, sock, "the connection was not kept")


if __name__ == "__main__":
    unittest.main()
