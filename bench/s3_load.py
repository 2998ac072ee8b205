"""Uploads a local directory tree into a bucket, keys = relative paths, with
boto3 and 16 threads (a foreign tool's writes: no x-amz-meta-*). Used by the
benches' radosgw mode to load their dataset once per run.

    python3 bench/s3_load.py ENDPOINT ACCESS_KEY SECRET_KEY DIR BUCKET
"""
import concurrent.futures
import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig

endpoint, ak, sk, root, bucket = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=ak, aws_secret_access_key=sk)
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
big = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20, max_concurrency=8)
paths = []
for d, dirs, files in os.walk(root):
    if d == root:  # what an own-server run wrote through the mount is not the dataset
        dirs[:] = [x for x in dirs if x not in ("ours", ".s3rdmafs-preserved")]
    for f in files:
        if not f.startswith(".done"):
            paths.append(os.path.join(d, f))


def put(path):
    key = os.path.relpath(path, root)
    if os.path.getsize(path) > (64 << 20):
        s3.upload_file(path, bucket, key, Config=big)
    else:
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f.read())


with concurrent.futures.ThreadPoolExecutor(16) as pool:
    for n, _ in enumerate(pool.map(put, paths), 1):
        if n % 10000 == 0:
            print(f"s3_load: {n}/{len(paths)}", file=sys.stderr)
print(f"s3_load: {len(paths)} objects in {bucket}", file=sys.stderr)
