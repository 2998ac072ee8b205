#!/usr/bin/python3
"""s3rdma-server and radosgw side by side under a third-party S3 conformance
suite (ceph/s3-tests), in one run.

    bench/s3_conformance.py S3_TESTS_CHECKOUT [--select EXPR] [--keep DIR]

Starts s3rdma-server (this build) over a temporary directory and a Ceph RGW
(tests/lib/radosgw.py, memstore), runs the same selection of
s3tests/functional/test_s3.py against each, and prints a table: cases run,
passed on each, and every case radosgw passes that s3rdma-server does not.

The selection is the S3 that s3rdma-server serves: buckets, listing, objects,
ranges, conditionals, copy, multipart, metadata, checksums and auth. Left out
by default: ACLs and policies, versioning, lifecycle, encryption, tagging,
object lock, CORS, websites, browser POST, logging, IAM/STS, storage
classes, anonymous access, and cases marked fails_on_aws (RGW extensions).

The suite is not in this tree (CI reaches only Debian's archives); pass a
checkout of https://github.com/ceph/s3-tests. Needs python3-pytest, -munch,
-gevent, -isodate, -lxml, -tz, -yaml (apt).
"""
import argparse
import configparser
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import radosgw  # noqa: E402

OUT_OF_SCOPE = [
    "acl", "policy", "cors", "post_object", "website", "logging", "lifecycle", "lc_",
    "version", "encrypt", "sse", "tagging", "tags", "lock", "retention", "legal_hold",
    "ownership", "public", "restore", "append", "storage_class", "notification", "select",
    "torrent", "payment", "accelerate", "replication", "inventory", "anon", "unauthenticated",
    "account", "iam", "sts", "delete_marker", "cloud", "tenant", "abac", "get_object_attributes",
    "object_attributes", "grant", "header_acl", "bucket_create_naming_dns", "transition",
]
MARKERS = "not fails_on_aws and not lifecycle and not versioning and not encryption and not " \
          "sse_s3 and not tagging and not object_lock and not bucket_policy and not user_policy " \
          "and not s3website and not s3select and not bucket_logging and not iam_user " \
          "and not iam_account and not iam_role and not storage_class and not appendobject"

AK, SK = "S3TESTSACCESSKEY", "s3tests/secret"


def conf(path, endpoint, ak, sk, user):
    host, port = endpoint.split("//")[1].split(":")
    c = configparser.ConfigParser()
    c["DEFAULT"] = {"host": host, "port": port, "is_secure": "False", "ssl_verify": "False"}
    c["fixtures"] = {"bucket prefix": "s3t-{random}-"}
    # The user as each server names it: radosgw's "tester", s3rdma-server's one owner.
    who = {"display_name": user, "user_id": user, "email": "tester@example.com",
           "access_key": ak, "secret_key": sk}
    for section in ("s3 main", "s3 alt", "iam", "iam root", "iam alt root"):
        c[section] = dict(who)
    c["s3 tenant"] = dict(who, tenant="tenant")
    with open(path, "w") as f:
        c.write(f)


def run_suite(suite, conf_path, select, junit, log):
    env = dict(os.environ, S3TEST_CONF=conf_path)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "s3tests/functional/test_s3.py", "-k", select, "-m", MARKERS, "--junitxml", junit]
    with open(log, "w") as out:
        subprocess.run(cmd, cwd=suite, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
    results = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        if "skipped" in kinds:
            continue
        results[case.get("name")] = not ({"failure", "error"} & kinds)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", help="a checkout of ceph/s3-tests")
    ap.add_argument("--select", help="pytest -k expression (default: the S3 s3rdma-server serves)")
    ap.add_argument("--keep", help="keep logs and junit files in this directory")
    a = ap.parse_args()
    select = a.select or " and ".join(f"not {w}" for w in OUT_OF_SCOPE)
    work = a.keep or tempfile.mkdtemp(prefix="s3conf-")
    os.makedirs(work, exist_ok=True)
    server_bin = os.path.join(REPO, "build", "server", "s3rdma-server")
    root = os.path.join(work, "root")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    port_file = os.path.join(work, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    server = subprocess.Popen([server_bin, "--root", root, "--port", "0", "--port-file", port_file,
                               "--access-key", AK, "--secret-key", SK],
                              stdout=open(os.path.join(work, "server.log"), "w"), stderr=subprocess.STDOUT)
    gw = radosgw.Radosgw(os.path.join(work, "rgw"))
    try:
        for _ in range(100):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        ours_ep = f"http://127.0.0.1:{open(port_file).read().strip()}"
        gw.start()
        conf(os.path.join(work, "ours.conf"), ours_ep, AK, SK, "s3rdma")
        conf(os.path.join(work, "rgw.conf"), gw.endpoint, radosgw.ACCESS_KEY, radosgw.SECRET_KEY, "tester")
        t0 = time.time()
        ours = run_suite(a.suite, os.path.join(work, "ours.conf"), select,
                         os.path.join(work, "ours.xml"), os.path.join(work, "ours.log"))
        t1 = time.time()
        rgw = run_suite(a.suite, os.path.join(work, "rgw.conf"), select,
                        os.path.join(work, "rgw.xml"), os.path.join(work, "rgw.log"))
        t2 = time.time()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        gw.stop()
    cases = sorted(set(ours) | set(rgw))
    only_rgw = [c for c in cases if rgw.get(c) and not ours.get(c)]
    only_ours = [c for c in cases if ours.get(c) and not rgw.get(c)]
    both_fail = [c for c in cases if not ours.get(c) and not rgw.get(c)]
    print(f"ceph/s3-tests test_s3.py, {len(cases)} cases selected "
          f"(-k: the S3 s3rdma-server serves; -m: {MARKERS.split(' and ')[0]} ...)\n")
    print("| | s3rdma-server | radosgw (Ceph 16) |")
    print("|---|---|---|")
    print(f"| passed | {sum(ours.values())} | {sum(rgw.values())} |")
    print(f"| failed | {len(ours) - sum(ours.values())} | {len(rgw) - sum(rgw.values())} |")
    print(f"| wall, s | {t1 - t0:.0f} | {t2 - t1:.0f} |")
    print(f"\npassed by radosgw only ({len(only_rgw)}): {' '.join(only_rgw) or '-'}")
    print(f"passed by s3rdma-server only ({len(only_ours)}): {' '.join(only_ours) or '-'}")
    print(f"failed by both ({len(both_fail)}): {' '.join(both_fail) or '-'}")
    print(f"\nlogs: {work}/ours.log, {work}/rgw.log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
