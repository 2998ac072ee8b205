#!/usr/bin/python3
"""s3rdmafs and s3fs side by side under a third-party POSIX conformance suite
(pjd/pjdfstest), in one run, on the same s3rdma-server.

    bench/posix_conformance.py PJDFSTEST_CHECKOUT [--only DIR,...] [--keep DIR]

Builds pjdfstest from the checkout (one C file; the configure checks are
answered for Linux here), starts s3rdma-server (this build), mounts one
bucket with s3rdmafs and another with s3fs (both with allow_other, as the
suite switches to other users), runs every tests/<syscall>/*.t in a fresh
directory of each mount, and prints a table of subtests passed per
syscall, then each file where s3fs passes subtests that s3rdmafs does not.

Left out: link/ (hard links: neither keeps them), chflags/ and granular/
(BSD file flags and ACLs). The suite is not in this tree (CI reaches only
Debian's archives); pass a checkout of https://github.com/pjd/pjdfstest.
Needs gcc, s3fs and fuse3 (scripts/install-deps.sh --test).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import harness  # noqa: E402

SKIPPED = {"link", "chflags", "granular"}
# What configure would find on Linux with glibc.
CONFIG_H = """
#define HAVE_FACCESSAT 1
#define HAVE_FCHMODAT 1
#define HAVE_FCHOWNAT 1
#define HAVE_FSTATAT 1
#define HAVE_LINKAT 1
#define HAVE_MKDIRAT 1
#define HAVE_MKFIFOAT 1
#define HAVE_MKNODAT 1
#define HAVE_OPENAT 1
#define HAVE_POSIX_FALLOCATE 1
#define HAVE_RENAMEAT 1
#define HAVE_SYMLINKAT 1
#define HAVE_UNLINKAT 1
#define HAVE_UTIMENSAT 1
#define HAVE_STRUCT_STAT_ST_ATIM 1
#define HAVE_STRUCT_STAT_ST_CTIM 1
#define HAVE_STRUCT_STAT_ST_MTIM 1
#define HAVE_SYS_SYSMACROS_H 1
"""
RESULT = re.compile(r"^(not ok|ok) (\d+)")


def build_suite(checkout, work):
    suite = os.path.join(work, "pjdfstest")
    shutil.rmtree(suite, ignore_errors=True)
    shutil.copytree(checkout, suite, ignore=shutil.ignore_patterns(".git"))
    with open(os.path.join(suite, "config.h"), "w") as f:
        f.write(CONFIG_H)
    subprocess.run(["gcc", "-O2", "-D_GNU_SOURCE", "-I", suite, "-o", os.path.join(suite, "pjdfstest"),
                    os.path.join(suite, "pjdfstest.c")], check=True)
    return suite


def run_file(test, cwd):
    """Subtest results of one .t file: {number: passed}."""
    try:
        out = subprocess.run(["bash", test], cwd=cwd, capture_output=True, text=True, timeout=300).stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    results = {}
    for line in out.splitlines():
        m = RESULT.match(line)
        if m:
            results[int(m.group(2))] = m.group(1) == "ok" and "# TODO" not in line
    return results


def run_suite(suite, mountpoint, only):
    results = {}
    for syscall in sorted(os.listdir(os.path.join(suite, "tests"))):
        d = os.path.join(suite, "tests", syscall)
        if not os.path.isdir(d) or syscall in SKIPPED or (only and syscall not in only):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".t"):
                continue
            cwd = os.path.join(mountpoint, f"{syscall}-{name[:-2]}")
            os.makedirs(cwd, exist_ok=True)
            results[f"{syscall}/{name}"] = run_file(os.path.join(d, name), cwd)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", help="a checkout of pjd/pjdfstest")
    ap.add_argument("--only", help="comma-separated syscall directories (default: all but link, chflags, granular)")
    ap.add_argument("--keep", help="keep the work directory (logs) here")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None
    work = a.keep or tempfile.mkdtemp(prefix="posixconf-")
    os.makedirs(work, exist_ok=True)
    suite = build_suite(a.suite, work)
    root = os.path.join(work, "root")
    shutil.rmtree(root, ignore_errors=True)
    for b in ("ours", "theirs"):
        os.makedirs(os.path.join(root, b))
    server = harness.Server(root, log=os.path.join(work, "server.log")).start()
    ours = harness.Mount(os.path.join(work, "s3rdmafs"), os.path.join(work, "s3rdmafs.log"))
    s3fs_dir = os.path.join(work, "s3fs")
    os.makedirs(s3fs_dir, exist_ok=True)
    pw = os.path.join(work, "s3fs.pw")
    with open(pw, "w") as f:
        f.write(f"{harness.ACCESS_KEY}:{harness.SECRET_KEY}\n")
    os.chmod(pw, 0o600)
    try:
        ours.start("ours", server.endpoint, options=["fuse.allow_other=true"])
        subprocess.run(["s3fs", "theirs", s3fs_dir, "-o",
                        f"passwd_file={pw},url={server.endpoint},use_path_request_style,allow_other,"
                        "dbglevel=warn"], check=True)
        harness.wait_for(lambda: harness.is_mounted(s3fs_dir), what="s3fs mount")
        t0 = time.time()
        mine = run_suite(suite, ours.mountpoint, only)
        t1 = time.time()
        theirs = run_suite(suite, s3fs_dir, only)
        t2 = time.time()
    finally:
        ours.stop()
        subprocess.run(["fusermount3", "-u", s3fs_dir], capture_output=True)
        server.stop()

    def passed(results, prefix=""):
        return sum(sum(r.values()) for f, r in results.items() if f.startswith(prefix))

    def total(results, prefix=""):
        return sum(len(r) for f, r in results.items() if f.startswith(prefix))

    print(f"pjdfstest, {total(theirs)} subtests in {len(theirs)} files (left out: {', '.join(sorted(SKIPPED))})\n")
    print("| syscall | s3rdmafs passed | s3fs 1.90 passed | subtests |")
    print("|---|---|---|---|")
    for syscall in sorted({f.split("/")[0] for f in theirs}):
        p = syscall + "/"
        print(f"| {syscall} | {passed(mine, p)} | {passed(theirs, p)} | {max(total(mine, p), total(theirs, p))} |")
    n = max(total(mine), total(theirs)) or 1
    print(f"| **all** | **{passed(mine)} ({100 * passed(mine) / n:.0f}%)** | "
          f"**{passed(theirs)} ({100 * passed(theirs) / n:.0f}%)** | {n} |")
    print(f"| wall, s | {t1 - t0:.0f} | {t2 - t1:.0f} | |")
    behind = [(f, sorted(k for k, ok in r.items() if ok and not mine.get(f, {}).get(k)))
              for f, r in sorted(theirs.items())]
    behind = [(f, ks) for f, ks in behind if ks]
    print(f"\nfiles where s3fs passes subtests s3rdmafs does not ({len(behind)}):")
    for f, ks in behind:
        print(f"  {f}: {' '.join(map(str, ks))}")
    print(f"\nwork directory: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
