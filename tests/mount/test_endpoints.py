"""Endpoint forms: HTTPS with a private CA bundle (TLS terminated by socat in
front of the reference server) and virtual-hosted-style addressing."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402


class EndpointTest(harness.MountTestCase):
    def make_ca(self):
        d = os.path.join(self.tmp, "pki")
        os.makedirs(d)
        def sh(*args):
            subprocess.run(args, cwd=d, check=True, capture_output=True)
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
           "-days", "2", "-subj", "/CN=s3rdmafs test CA")
        sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
           "-subj", "/CN=localhost")
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        sh("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
           "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
        return d

    def test_https_with_ca_bundle(self):
        self.write("secure/file.bin", b"over TLS" * 100000)
        srv = self.server()
        pki = self.make_ca()
        port = harness.free_port()
        tls = subprocess.Popen(["socat", f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,"
                                f"cert={pki}/server.pem,key={pki}/server.key,verify=0",
                                f"TCP:127.0.0.1:{srv.port}"], stderr=subprocess.DEVNULL)
        try:
            harness.wait_for(lambda: harness.port_open(port), 10, "socat")
            endpoint = f"https://localhost:{port}"
            bad = harness.Mount(os.path.join(self.tmp, "bad"), os.path.join(self.tmp, "bad.log"))
            self._mounts.append(bad)
            r = bad.start("bucket", endpoint, check=False)
            self.assertNotEqual(r.returncode, 0, "an unknown CA must not be trusted")
            self.assertIn("s3.ca_bundle", r.stderr)
            m = self.mount(endpoint, options=[f"s3.ca_bundle={pki}/ca.pem"])
            with open(os.path.join(m.mountpoint, "secure/file.bin"), "rb") as f:
                self.assertEqual(f.read(), b"over TLS" * 100000)
        finally:
            tls.terminate()
            tls.wait(5)

    def test_virtual_hosted_addressing(self):
        self.write("dir/vh.txt", b"virtual host")
        srv = self.server(extra=["--domain", "localhost"])
        m = self.mount(f"http://localhost:{srv.port}", options=["s3.addressing=virtual"])
        with open(os.path.join(m.mountpoint, "dir/vh.txt"), "rb") as f:
            self.assertEqual(f.read(), b"virtual host")
        with open(srv.log, errors="replace") as f:
            log = f.read()
        self.assertIn("DEBUG GET /dir/vh.txt", log, "the bucket travelled in the Host header, not the path")
        self.assertNotIn("GET /bucket/", log)


if __name__ == "__main__":
    unittest.main()
