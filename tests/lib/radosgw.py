"""A real Ceph RGW for tests and benches: one monitor, one OSD and one
radosgw from Debian's ceph packages, all in a temporary directory, with
cephx off and messenger mode crc.

    python3 tests/lib/radosgw.py DIR [--bluestore] [--port P]

starts one and prints its endpoint and keys as shell assignments (the
benches eval them); `Radosgw(DIR).start()` does the same from Python.
The OSD keeps its objects in memory (memstore) unless bluestore is asked
for, which puts a sparse file under DIR (what issue 15 measured against).
A test that needs it and finds no radosgw binary says so and fails:
scripts/install-deps.sh --test installs the packages.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

ACCESS_KEY = "RGWTESTACCESSKEY"
SECRET_KEY = "rgw/test+secret"
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_binaries():
    return [b for b in BINARIES if shutil.which(b) is None]


class Radosgw:
    def __init__(self, workdir, port=0, bluestore=False):
        self.dir = os.path.abspath(workdir)
        self.port = port or _free_port()
        self.mon_port = _free_port()
        self.bluestore = bluestore
        self.conf = os.path.join(self.dir, "ceph.conf")
        self.procs = []
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _ceph(self, *args, timeout=60):
        out = subprocess.run(["ceph", "-c", self.conf, *args], capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"ceph {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def _run(self, *cmd):
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]}: {out.stderr.strip() or out.stdout.strip()}")
        return out.stdout

    def _daemon(self, name, *cmd):
        with open(os.path.join(self.dir, f"{name}.out"), "w") as log:
            p = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.procs.append(p)
        return p

    def _write_conf(self):
        store = "bluestore" if self.bluestore else "memstore"
        d = self.dir
        with open(self.conf, "w") as f:
            f.write(f"""[global]
fsid = {self.fsid}
mon host = v1:127.0.0.1:{self.mon_port}
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd objectstore = {store}
memstore device bytes = 4294967296
bluestore block path = {d}/bluestore.block
bluestore block size = 21474836480
bluestore block create = true
bluestore fsck on mkfs = false
osd crush chooseleaf type = 0
osd crush update on start = false
osd class update on start = false
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
mon data = {d}/mon
osd data = {d}/osd
keyring = {d}/keyring
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{self.port} tcp_nodelay=1
rgw data = {d}/rgw
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw thread pool size = 64
""")

    def start(self, timeout=90, attempts=3):
        missing = missing_binaries()
        if missing:
            raise RuntimeError("radosgw needs " + ", ".join(missing) +
                               ": run scripts/install-deps.sh --test")
        # A start that fails for a reason of the moment: a fresh cluster on
        # fresh ports then comes up.
        for attempt in range(attempts):
            try:
                return self._start_once(timeout)
            except RuntimeError as e:
                self.stop()
                if attempt + 1 == attempts:
                    raise
                print(f"radosgw: start failed ({e}); starting afresh", file=sys.stderr)
                for sub in ("mon", "osd", "run", "rgw"):
                    shutil.rmtree(os.path.join(self.dir, sub), ignore_errors=True)
                for left in ("monmap", "keyring", "bluestore.block"):  # remade by the next attempt
                    if os.path.exists(os.path.join(self.dir, left)):
                        os.unlink(os.path.join(self.dir, left))
                self.port, self.mon_port = _free_port(), _free_port()
                self.endpoint = f"http://127.0.0.1:{self.port}"

    def _start_once(self, timeout):
        for sub in ("mon", "osd", "run", "log", "rgw"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.fsid = str(uuid.uuid4())
        self._write_conf()
        keyring = os.path.join(self.dir, "keyring")
        self._run("ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")
        monmap = os.path.join(self.dir, "monmap")
        self._run("monmaptool", "--create", "--fsid", self.fsid, "--addv", "a",
                  f"[v1:127.0.0.1:{self.mon_port}]", monmap)
        self._run("ceph-mon", "-c", self.conf, "--mkfs", "-i", "a", "--monmap", monmap,
                  "--keyring", keyring)
        self._daemon("mon", "ceph-mon", "-c", self.conf, "-i", "a", "-f")
        deadline = time.time() + timeout
        osd_uuid = str(uuid.uuid4())
        while True:
            try:
                osd_id = self._ceph("osd", "new", osd_uuid, timeout=10).strip()
                break
            except (RuntimeError, subprocess.TimeoutExpired):
                if time.time() > deadline:
                    raise RuntimeError("ceph-mon did not come up: see " + self.dir + "/log")
                time.sleep(0.3)
        self._run("ceph-osd", "-c", self.conf, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        # The OSD would place itself in the CRUSH map as it starts, but Ceph 16
        # sometimes sends that command before its monitor client has the
        # cluster's fsid, and the monitor refuses it ('wrong fsid': the OSD
        # exits; CI saw it three starts in a row). Placed from here instead.
        self._ceph("osd", "crush", "add", f"osd.{osd_id}", "1.0", "root=default")
        self._daemon("osd", "ceph-osd", "-c", self.conf, "-i", osd_id, "-f")
        self._daemon("rgw", "radosgw", "-c", self.conf, "-n", "client.rgw", "-f")
        while not self._rgw_answers():
            if time.time() > deadline:
                raise RuntimeError("radosgw did not answer: see " + self.dir + "/log")
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited ({p.returncode}): see {self.dir}/log")
            time.sleep(0.3)
        self._run("radosgw-admin", "-c", self.conf, "user", "create", "--uid", "tester",
                  "--display-name", "tester", "--access-key", ACCESS_KEY,
                  "--secret-key", SECRET_KEY)
        return self

    def _rgw_answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return s.recv(12).startswith(b"HTTP/1.1")
        except OSError:
            return False

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bluestore", action="store_true")
    a = ap.parse_args()
    gw = Radosgw(a.dir, a.port, a.bluestore)
    try:
        gw.start()
    except RuntimeError as e:
        gw.stop()
        sys.exit(f"radosgw: {e}")
    # The daemons outlive this script (start_new_session); the caller stops
    # them with: pkill -f 'DIR/ceph.conf' (their command lines name it).
    print(f"RGW_ENDPOINT={gw.endpoint}\nRGW_ACCESS_KEY='{ACCESS_KEY}'\n"
          f"RGW_SECRET_KEY='{SECRET_KEY}'\nRGW_PIDS='{' '.join(str(p.pid) for p in gw.procs)}'")
