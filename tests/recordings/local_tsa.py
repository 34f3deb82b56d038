"""A real RFC 3161 Time-Stamping Authority for tests and the benchmark: OpenSSL's `openssl ts
-reply` behind a tiny HTTP server on 127.0.0.1.

Keys and certificates are made at run time (nothing secret is committed): a self-signed test CA
and a TSA certificate it issued, with extendedKeyUsage critical timeStamping as RFC 3161 §2.3
requires. Each POSTed TimeStampReq is written to a file and piped through `openssl ts -reply`;
its DER TimeStampResp is the answer.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


@dataclass(frozen=True)
class TsaFiles:
    directory: Path
    ca_cert: Path
    tsa_cert: Path
    tsa_key: Path
    config: Path


def make_tsa_files(directory: Path, name: str = "Test TSA") -> TsaFiles:
    """A test CA, a TSA certificate issued by it, and an openssl `ts` configuration."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} Root CA"))
        .issuer_name(_name(f"{name} Root CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TsaFiles(
        directory,
        directory / "ca.crt",
        directory / "tsa.crt",
        directory / "tsa.key",
        directory / "openssl.cnf",
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.tsa_cert.write_bytes(tsa.public_bytes(serialization.Encoding.PEM))
    _write_key(files.tsa_key, tsa_key)
    (directory / "serial").write_text("01\n")
    files.config.write_text(
        f"""[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {directory}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
    )
    return files


class LocalTsa:
    """`openssl ts -reply` served over HTTP on 127.0.0.1 (one request at a time, as the serial
    file wants)."""

    def __init__(self, files: TsaFiles) -> None:
        assert OPENSSL is not None, "openssl is required"
        self.files = files
        self.requests = 0
        self.delay_s = 0.0  # a slow TSA: each reply waits this long
        self._lock = threading.Lock()
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                query = self.rfile.read(length)
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self.send_error(415)
                    return
                reply = tsa.reply(query)
                if reply is None:
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsa"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def reply(self, query: bytes) -> bytes | None:
        time.sleep(self.delay_s)  # on the server's own thread
        with self._lock:
            self.requests += 1
            n = self.requests
            qfile = self.files.directory / f"q{n}.tsq"
            rfile = self.files.directory / f"r{n}.tsr"
            qfile.write_bytes(query)
            assert OPENSSL is not None
            proc = subprocess.run(
                [
                    OPENSSL,
                    "ts",
                    "-reply",
                    "-config",
                    str(self.files.config),
                    "-queryfile",
                    str(qfile),
                    "-out",
                    str(rfile),
                ],
                capture_output=True,
                timeout=30,
                check=False,
            )
            if proc.returncode != 0:
                return None
            return rfile.read_bytes()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def local_tsa(directory: Path, name: str = "Test TSA") -> Iterator[LocalTsa]:
    tsa = LocalTsa(make_tsa_files(directory, name))
    try:
        yield tsa
    finally:
        tsa.close()


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"


@contextlib.contextmanager
def hanging_tsa() -> Iterator[str]:
    """A URL whose server accepts the connection (kernel backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/tsa"


def main(argv: list[str]) -> int:
    """`python -m tests.recordings.local_tsa DIR`: serve a test TSA in its own process (the
    benchmark runs it there so its CPU is not counted as the recorder's), print its URL and
    CA certificate path, and serve until stdin closes."""
    import sys

    with local_tsa(Path(argv[0])) as tsa:
        print(tsa.url, tsa.files.ca_cert, flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
