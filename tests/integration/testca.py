"""A throwaway PKI for the sink tests, made at test time with the openssl command-line tool.

    ca = TestCA(directory, "Sinks Test CA")
    server = ca.issue("server", "127.0.0.1", server=True)   # -> Cert(cert=..., key=...)
    client = ca.issue("client", "certrelay-client", client=True)
    leaf   = ca.issue("leaf", "www.example.com", email="alice@example.com")

Every file is PEM except Cert.der. Keys are EC P-256: fast to make, accepted everywhere.
"""

import os
import subprocess


class Cert:
    def __init__(self, cert, key, der):
        self.cert, self.key, self.der = cert, key, der

    def der_bytes(self):
        with open(self.der, "rb") as f:
            return f.read()


def _openssl(*args, cwd=None):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed:\n%s" % (" ".join(args),
                                                         p.stderr.decode("utf-8", "replace")))
    return p.stdout


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, directory, name):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        base = os.path.join(directory, "ca")
        self.key = base + ".key"
        self.cert = base + ".pem"
        self.serial = 0x1000
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.key)
        _openssl("req", "-x509", "-new", "-key", self.key, "-out", self.cert, "-days", "2",
                 "-subj", "/CN=%s" % name, "-sha256",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, label, cn, server=False, client=False, email=None):
        base = os.path.join(self.dir, label)
        key, csr, pem, der, ext = (base + ".key", base + ".csr", base + ".pem", base + ".der",
                                   base + ".ext")
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        _openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=%s" % cn)
        lines = ["basicConstraints=CA:FALSE"]
        sans = []
        if server:
            lines.append("extendedKeyUsage=serverAuth")
            sans += ["IP:127.0.0.1", "DNS:localhost"]
        if client:
            lines.append("extendedKeyUsage=clientAuth")
        if email:
            sans.append("email:%s" % email)
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        with open(ext, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.serial += 1
        _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                 "-set_serial", str(self.serial), "-out", pem, "-days", "2", "-sha256",
                 "-extfile", ext)
        _openssl("x509", "-in", pem, "-outform", "DER", "-out", der)
        return Cert(pem, key, der)
