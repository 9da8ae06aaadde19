"""Fresh TLS material made with the openssl command: a CA and a server
certificate for localhost / 127.0.0.1, both ECDSA P-256."""

import os
import subprocess

from .errors import TestFailure


class TlsMaterial:
    def __init__(self, directory):
        self.dir = directory
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca_cert = os.path.join(directory, "ca.pem")
        self.server_key = os.path.join(directory, "server.key")
        self.server_cert = os.path.join(directory, "server.pem")


def _openssl(args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise TestFailure("openssl %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                          (r.stderr or r.stdout).strip()))
    return r.stdout


def make_tls(directory, days=2):
    """Writes ca.key, ca.pem, server.key, server.pem into `directory`.
    Keys are private to root (0600); the certificates are world-readable so
    an unprivileged worker may read the CA."""
    os.makedirs(directory, exist_ok=True)
    t = TlsMaterial(directory)
    ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    old_umask = os.umask(0o077)
    try:
        _openssl(["genpkey", *ec, "-out", t.ca_key], directory)
        _openssl(["genpkey", *ec, "-out", t.server_key], directory)
    finally:
        os.umask(old_umask)
    _openssl(["req", "-x509", "-new", "-key", t.ca_key, "-sha256", "-days", str(days),
              "-subj", "/CN=kbgp e2e test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-out", t.ca_cert], directory)
    csr = os.path.join(directory, "server.csr")
    ext = os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(["req", "-new", "-key", t.server_key, "-subj", "/CN=localhost", "-out", csr], directory)
    _openssl(["x509", "-req", "-in", csr, "-CA", t.ca_cert, "-CAkey", t.ca_key,
              "-CAcreateserial", "-days", str(days), "-sha256", "-extfile", ext,
              "-out", t.server_cert], directory)
    for path in (t.ca_cert, t.server_cert):
        os.chmod(path, 0o644)
    return t
