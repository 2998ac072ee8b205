"""A fault-injecting HTTP proxy between a mount and its S3 server.

It relays HTTP/1.1 requests (keep-alive, Content-Length and chunked bodies)
from loopback clients to one upstream, and applies the first matching rule to
each request:

  pass      relay as is
  delay     wait `seconds`, then relay
  error     answer `status` with an S3 error body (`code`), never forwarding
  lost      forward, let the server act on it, then close the client's
            connection without a reply (a lost response)
  reset     close the client's connection before forwarding (RST)
  truncate  forward, relay the reply head and `keep` body bytes, then close
  pause     hold the request until `release()` is called (or `seconds`)

Rules match a method and a regular expression on the request target
(path + query), fire `times` times (None: forever), and count their hits, so a
test can prove the fault happened. The proxy runs in a thread of the test.
"""
import re
import socket
import threading
import time

S3_ERROR = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
            "<Message>injected by fault_proxy</Message></Error>")
REASONS = {500: "Internal Server Error", 503: "Service Unavailable", 404: "Not Found"}


class Rule:
    def __init__(self, action, method=None, target=".*", times=1, **kw):
        self.action, self.method, self.target = action, method, re.compile(target)
        self.times, self.hits, self.kw = times, 0, kw
        self.released = threading.Event()

    def matches(self, method, target):
        if self.times is not None and self.hits >= self.times:
            return False
        return (self.method is None or self.method == method) and self.target.search(target)

    def release(self):
        self.released.set()


def _read_head(sock, buf):
    """Reads up to the end of an HTTP head; returns (head bytes, rest) or (None, buf) on EOF."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def _headers(head):
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


def _read_body(sock, fields, rest, out):
    """Relays one body (Content-Length or chunked) from `sock`, starting with
    `rest`, into the callable `out`; returns the bytes read past the body."""
    if fields.get("transfer-encoding", "").lower() == "chunked":
        buf = rest
        while True:
            while b"\r\n" not in buf:
                more = sock.recv(65536)
                if not more:
                    raise ConnectionError("eof in chunk size")
                buf += more
            line, _, buf = buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            need = size + 2
            while len(buf) < need:
                more = sock.recv(65536)
                if not more:
                    raise ConnectionError("eof in chunk")
                buf += more
            out(line + b"\r\n" + buf[:need])
            buf = buf[need:]
            if size == 0:
                return buf
    n = int(fields.get("content-length", "0"))
    take = rest[:n]
    out(take)
    left = n - len(take)
    while left > 0:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("eof in body")
        out(chunk)
        left -= len(chunk)
    return rest[n:] if len(rest) > n else b""


class FaultProxy:
    def __init__(self, upstream_port, host="127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.rules, self.lock = [], threading.Lock()
        self.requests = []  # (method, target) of every request seen
        self.bytes_down = 0  # reply body bytes relayed to clients
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.conns = set()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def add(self, action, method=None, target=".*", times=1, **kw):
        r = Rule(action, method, target, times, **kw)
        with self.lock:
            self.rules.append(r)
        return r

    def clear(self):
        with self.lock:
            for r in self.rules:
                r.release()
            self.rules = []

    def count(self, method, target=".*"):
        pattern = re.compile(target)
        with self.lock:
            return sum(1 for m, t in self.requests if m == method and pattern.search(t))

    def stop(self):
        self.stopping = True
        self.clear()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.conns.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _rule_for(self, method, target):
        with self.lock:
            self.requests.append((method, target))
            for r in self.rules:
                if r.matches(method, target):
                    r.hits += 1
                    return r
        return None

    def _serve(self, client):
        upstream = None
        buf = b""
        try:
            while not self.stopping:
                head, buf = _read_head(client, buf)
                if head is None:
                    return
                start, fields = _headers(head)
                method, target = start.split(" ")[0], start.split(" ")[1]
                body = []
                buf = _read_body(client, fields, buf, body.append)
                rule = self._rule_for(method, target)
                action = rule.action if rule else "pass"
                if action == "reset":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    return
                if action == "error":
                    status = rule.kw.get("status", 503)
                    text = S3_ERROR.format(code=rule.kw.get("code", "SlowDown")).encode()
                    client.sendall(f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                                   f"Content-Type: application/xml\r\nContent-Length: {len(text)}\r\n"
                                   f"\r\n".encode() + (b"" if method == "HEAD" else text))
                    continue
                if action == "delay":
                    time.sleep(rule.kw.get("seconds", 1.0))
                if action == "pause":
                    rule.released.wait(rule.kw.get("seconds", 60.0))
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                upstream.sendall(head + b"".join(body))
                rhead, rest = _read_head(upstream, b"")
                if rhead is None:
                    return
                rstart, rfields = _headers(rhead)
                status = int(rstart.split(" ")[1])
                if action == "lost":
                    if method != "HEAD" and status not in (204, 304):
                        _read_body(upstream, rfields, rest, lambda b: None)
                    return  # the server acted; the client never hears of it
                client.sendall(rhead)
                if method == "HEAD" or status in (204, 304):
                    continue
                if action == "truncate":
                    keep = [rule.kw.get("keep", 0)]

                    def partial(b, keep=keep):
                        if keep[0] > 0:
                            client.sendall(b[:keep[0]])
                            keep[0] -= len(b[:keep[0]])
                        if keep[0] <= 0:
                            raise ConnectionAbortedError("truncated")
                    try:
                        _read_body(upstream, rfields, rest, partial)
                    except ConnectionAbortedError:
                        pass
                    return
                def relay(b):
                    client.sendall(b)
                    self.bytes_down += len(b)
                leftover = _read_body(upstream, rfields, rest, relay)
                if leftover:
                    return  # the server sent more than one reply: give up on this connection
                if rfields.get("connection", "").lower() == "close":
                    return
        except (OSError, ConnectionError, ValueError, IndexError):
            return
        finally:
            for s in (client, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass
            with self.lock:
                self.conns.discard(client)
