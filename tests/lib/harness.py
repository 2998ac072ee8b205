"""Test harness: a real s3rdma-server on loopback and real s3rdmafs mounts.

Binaries come from $S3RDMAFS_BUILD (set by ctest). Every process a test starts
is stopped in tearDown, and every mount is unmounted, even when a test fails.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("S3RDMAFS_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
SERVER_BIN = os.path.join(BUILD, "server", "s3rdma-server")
# The daemon may come from another build (the ThreadSanitizer smoke test).
FS_BIN = os.environ.get("S3RDMAFS_FS_BIN", os.path.join(BUILD, "src", "s3rdmafs"))
# Every mount test through a gateway in front of its server (ctest gateway.*).
VIA_GATEWAY = bool(os.environ.get("S3RDMAFS_VIA_GATEWAY"))
ACCESS_KEY = "TESTACCESSKEY"
SECRET_KEY = "test/secret+key"


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def metrics_text(where):
    """The mount's metrics page (metrics.listen=`where`), as Prometheus text."""
    if where.startswith("unix:"):
        cmd = ["curl", "-sf", "--unix-socket", where[5:], "http://localhost/metrics"]
    else:
        cmd = ["curl", "-sf", f"http://{where}/metrics"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return out.stdout


def metrics(where, text=None):
    """The mount's metrics as {sample: value} (of `text`, if given)."""
    values = {}
    for line in (metrics_text(where) if text is None else text).splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


RXE_IP = os.environ.get("RXE_IP")  # the Soft-RoCE guest's RDMA address (tests/rdma/rxe-vm.sh)


def have_rdma():
    return bool(RXE_IP) and os.path.isdir("/sys/class/infiniband") and bool(os.listdir("/sys/class/infiniband"))


def require_rdma(test):
    """Skips `test` without an RDMA device, saying so; in the guest
    (S3RDMAFS_REQUIRE_RDMA=1) a missing device is a failure."""
    if have_rdma():
        return
    if os.environ.get("S3RDMAFS_REQUIRE_RDMA"):
        test.fail("S3RDMAFS_REQUIRE_RDMA is set but there is no RDMA device / RXE_IP")
    test.skipTest("no RDMA device on this host: runs in the Soft-RoCE guest (tests/rdma/run-in-guest.sh)")


def aws_chunked_put(port, path, chunks, signed=True, trailer=None, sign_trailer=False, forge_at=None):
    """PUTs `chunks` to 127.0.0.1:`port` at `path` as an aws-chunked body, as
    current SDKs send it, signed with ACCESS_KEY/SECRET_KEY. `trailer`:
    (algorithm, base64 value) sent after the last chunk (signed too with
    `sign_trailer`); `forge_at`: the index in chunks + [the final empty chunk]
    whose chunk signature is replaced by zeros. Returns (status, headers, body)."""
    import hashlib
    import hmac
    import http.client
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    form = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" if signed else "STREAMING-UNSIGNED-PAYLOAD"
    if trailer or not signed:
        form += "-TRAILER"
    headers = {"X-Amz-Content-SHA256": form, "Content-Encoding": "aws-chunked",
               "X-Amz-Decoded-Content-Length": str(sum(len(c) for c in chunks))}
    if trailer:
        headers["X-Amz-Trailer"] = f"x-amz-checksum-{trailer[0]}"
    req = AWSRequest(method="PUT", url=f"http://127.0.0.1:{port}{path}", data=b"", headers=headers)

    class StreamingAuth(S3SigV4Auth):  # signs the streaming form, not a body hash
        def payload(self, request):
            return form
    StreamingAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    date = req.headers["X-Amz-Date"]
    scope = f"{date[:8]}/us-east-1/s3/aws4_request"
    prev = req.headers["Authorization"].split("Signature=")[1]
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (date[:8], "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    body = b""
    for i, chunk in enumerate(list(chunks) + [b""]):
        line = f"{len(chunk):x}".encode()
        if signed:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", date, scope, prev, hashlib.sha256(b"").hexdigest(),
                             hashlib.sha256(chunk).hexdigest()])
            prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            line += b";chunk-signature=" + (b"0" * 64 if i == forge_at else prev.encode())
        body += line + b"\r\n" + (chunk + b"\r\n" if chunk else b"")
    if trailer:
        text = f"x-amz-checksum-{trailer[0]}:{trailer[1]}\n"
        body += text.replace("\n", "\r\n").encode()
        if sign_trailer:
            sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", date, scope, prev, hashlib.sha256(text.encode()).hexdigest()])
            body += b"x-amz-trailer-signature:" + hmac.new(key, sts.encode(), hashlib.sha256).hexdigest().encode() + b"\r\n"
    body += b"\r\n"
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("PUT", path, body=body, headers=dict(req.headers.items()))
    r = c.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


STREAM_PIPE = 4 << 20  # fs/streamed_reads.h kStreamPipeBytes


def allow_stream_pipes(testcase):
    """fuse.splice_reads needs 4 MiB pipes. Root with CAP_SYS_RESOURCE makes
    them whatever fs.pipe-max-size says; in containers without it the sysctl
    must allow them. Raised for the test when lower, put back after."""
    path = "/proc/sys/fs/pipe-max-size"
    with open(path) as f:
        old = int(f.read())
    if old >= STREAM_PIPE:
        return

    def put_back():
        with open(path, "w") as f:
            f.write(str(old))
    with open(path, "w") as f:
        f.write(str(STREAM_PIPE))
    testcase.addCleanup(put_back)


def free_port():
    """A loopback TCP port nobody listens on (for 'unreachable' and side servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def checked_reader(path, data, step, wrong, errors):
    """A thread body that reads `path` sequentially in `step` chunks, recording
    offsets whose bytes differ from `data` in `wrong` and the errno of a failed
    read in `errors` (where it stops)."""
    def run():
        with open(path, "rb", buffering=0) as f:
            off = 0
            while off < len(data):
                try:
                    chunk = f.read(step)
                except OSError as e:
                    errors.append(e.errno)
                    return
                if not chunk:
                    return
                if chunk != data[off:off + len(chunk)]:
                    wrong.append(off)
                off += len(chunk)
    return run


class Server:
    """s3rdma-server over `root` (buckets = its subdirectories), or, given
    `upstream` = (endpoint, access key, secret key), a gateway in front of
    that S3; its own clients sign with ACCESS_KEY/SECRET_KEY either way."""

    def __init__(self, root, port=0, anonymous=False, log=None, extra=(), upstream=None):
        self.root, self.port, self.anonymous, self.extra = root, port, anonymous, list(extra)
        self.upstream = upstream
        self.log = log or os.path.join(root, "..", "server.log")
        self.proc = None

    def start(self):
        port_file = tempfile.mktemp(prefix="s3rdma-port-")
        env = dict(os.environ)
        if self.upstream:
            where = ["--upstream", self.upstream[0]]
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = self.upstream[1:]
        else:
            where = ["--root", self.root]
        args = [SERVER_BIN, *where, "--port", str(self.port), "--port-file", port_file,
                "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY]
        if self.anonymous:
            args.append("--anonymous")
        args += ["--log-level", "debug"]  # an access log: tests count requests in it
        args += self.extra
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, env=env)
        wait_for(lambda: os.path.exists(port_file) or self.proc.poll() is not None, what="server start")
        if self.proc.poll() is not None:
            raise AssertionError("s3rdma-server failed to start: " + open(self.log).read()[-2000:])
        with open(port_file) as f:
            self.port = int(f.read())
        os.unlink(port_file)
        return self

    def requests(self, method):
        """How many requests of `method` the access log has seen so far."""
        with open(self.log, errors="replace") as f:
            return sum(1 for line in f if f" DEBUG {method} " in line)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


class Mount:
    """An s3rdmafs mount in the background (the daemon's own fork)."""

    def __init__(self, mountpoint, log):
        self.mountpoint, self.log = mountpoint, log
        self.result = None

    def start(self, source, endpoint, options=(), config=None, check=True, timeout=60,
              access_key=ACCESS_KEY, secret_key=SECRET_KEY):
        os.makedirs(self.mountpoint, exist_ok=True)
        args = [FS_BIN, source, self.mountpoint, "--log-file", self.log, "-o", f"s3.endpoint={endpoint}"]
        if config:
            args += ["--config", config]
        for o in options:
            args += ["-o", o]
        env = dict(os.environ)
        env.pop("AWS_PROFILE", None)
        if access_key is not None:
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = access_key, secret_key
        self.result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
        if check and self.result.returncode != 0:
            raise AssertionError(f"mount failed ({self.result.returncode}): {self.result.stderr}\n"
                                 f"log: {self.log_text()[-3000:]}")
        return self.result

    def daemon_pid(self):
        out = subprocess.run(["pgrep", "-f", f"{FS_BIN} .* {self.mountpoint} "], capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split()]
        return pids[0] if pids else None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if is_mounted(self.mountpoint):
            pid = self.daemon_pid()
            subprocess.run(["fusermount3", "-u", self.mountpoint], capture_output=True)
            if is_mounted(self.mountpoint):
                subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)
            if pid:
                wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, "daemon exit")


class MountTestCase(unittest.TestCase):
    """Base class: a temp dir with a server root and helpers to mount it."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="s3rdmafs-test-")
        self.root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(self.root, "bucket"))
        self._servers, self._mounts = [], []

    def tearDown(self):
        for m in self._mounts:
            m.stop()
        for s in self._servers:
            s.stop()
        if not os.environ.get("S3RDMAFS_KEEP"):  # set it to look at a failed test's files
            shutil.rmtree(self.tmp, ignore_errors=True)

    def server(self, **kw):
        if VIA_GATEWAY:
            return self.gateway_server(**kw)
        s = Server(self.root, log=os.path.join(self.tmp, "server.log"), **kw).start()
        self._servers.append(s)
        return s

    def gateway_server(self, extra=(), **kw):
        """S3RDMAFS_VIA_GATEWAY=1: the server a test asked for, with a gateway
        (s3rdma-server --upstream) in front that the test gets instead: every
        request of the test's mounts then goes through the gateway, while
        the test still seeds and checks the directory behind it. The
        gateway's log is "server.log" (requests are counted there)."""
        back = Server(self.root, log=os.path.join(self.tmp, "backend.log"), **kw).start()
        self._servers.append(back)
        gw = Server(None, log=os.path.join(self.tmp, "server.log"), extra=extra,
                    anonymous=kw.get("anonymous", False),
                    upstream=(back.endpoint, ACCESS_KEY, SECRET_KEY)).start()
        self._servers.append(gw)
        return gw

    def mount(self, server_or_endpoint, source="bucket", name="mnt", **kw):
        endpoint = server_or_endpoint if isinstance(server_or_endpoint, str) else server_or_endpoint.endpoint
        m = Mount(os.path.join(self.tmp, name), os.path.join(self.tmp, name + ".log"))
        self._mounts.append(m)
        m.start(source, endpoint, **kw)
        return m

    def write(self, key, data, bucket="bucket"):
        path = os.path.join(self.root, bucket, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path
