"""Command line: `python -m recordings {verify,export,selftest,keygen,recover,document}`.

`verify PATH` checks a recording package (a directory) or a sealed hearing document (a file:
recordings/document.py, docs/document-format.md) with the same trust options and exit codes
(a document has no declared gaps: 0 intact, 1 tampered or untrusted, 3 usage or I/O error).
`document pdf DOC.json -o OUT.pdf` prints a sealed document as a Chinese PDF.

`main(argv) -> int` is what `shared-court verify/export/recover/recording` delegate to.
Exit codes (verify and export): 0 intact, 2 intact with declared gaps, 1 tampered, silently
incomplete or signed by a key nobody trusted, 3 usage or I/O error (a usage error is 3, never
argparse's 2, which a script would read as "intact with declared gaps").

Trust: verify and export check signatures against the keys given with `--public-key` (repeatable)
and the public keys in the trust directory (`--trust-dir`, default `$SHARED_COURT_TRUST_DIR`).
Without any, the package's own embedded key proves nothing (anyone can re-sign a package with a
key of their own), so the verdict is "untrusted signer" (exit 1) unless `--trust-embedded-key`
is given knowingly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .document import NotADocumentError, verify_document
from .errors import IntegrityError, RecordingError
from .export import ProgressBar, export_package
from .keys import (
    VerifyKey,
    keygen,
    load_archive_private_key,
    load_signing_key,
    load_trust_dir,
    load_verify_key,
)
from .recovery import recover
from .selftest import run_selftest
from .timestamps import TsaTrust, load_certificates
from .verify import EXIT_TAMPERED, EXIT_USAGE, verify_package

TRUST_DIR_ENV = "SHARED_COURT_TRUST_DIR"


def _trust_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--public-key",
        type=Path,
        action="append",
        default=[],
        help="trusted Ed25519 signing public key (PEM); repeatable",
    )
    p.add_argument(
        "--trust-dir",
        type=Path,
        default=os.environ.get(TRUST_DIR_ENV) or None,
        help=f"directory of trusted signing public keys (*.pub, *.pem; default ${TRUST_DIR_ENV})",
    )
    p.add_argument(
        "--trust-embedded-key",
        action="store_true",
        help="trust the signing key the package names itself (proves integrity, not origin)",
    )


def _trusted_keys(args: argparse.Namespace) -> list[VerifyKey]:
    """Raises KeyFileError."""
    keys = [load_verify_key(p) for p in args.public_key]
    if args.trust_dir is not None:
        keys.extend(load_trust_dir(args.trust_dir))
    return keys


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Evidence recording packages")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="verify a package offline (no decryption key needed)")
    v.add_argument("path", type=Path)
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    _trust_options(v)
    v.add_argument(
        "--tsa-ca",
        type=Path,
        action="append",
        default=[],
        help="trusted Time-Stamping Authority certificate(s) (PEM/DER: root CA, intermediates, "
        "the TSA's own); RFC 3161 tokens in the package are checked against them; repeatable",
    )
    e = sub.add_parser("export", help="verify, then decrypt into playable .webm files")
    e.add_argument("path", type=Path)
    e.add_argument("--key-file", type=Path, required=True, help="archive X25519 private key")
    e.add_argument("-o", "--output", type=Path, required=True)
    _trust_options(e)
    s = sub.add_parser("selftest", help="record, seal and verify synthetic media")
    s.add_argument("-o", "--output", type=Path, required=True)
    s.add_argument("--seconds", type=float, default=5.0)
    k = sub.add_parser("keygen", help="create archive (X25519) and signing (Ed25519) key pairs")
    k.add_argument("-o", "--output", type=Path, required=True)
    r = sub.add_parser("recover", help="seal unfinished recordings under a directory")
    r.add_argument("path", type=Path)
    r.add_argument("--signing-key", type=Path, required=True)
    d = sub.add_parser("document", help="sealed hearing documents (transcripts, agreements)")
    dsub = d.add_subparsers(dest="document_command", required=True)
    pdf = dsub.add_parser("pdf", help="print a sealed document as a PDF (Chinese)")
    pdf.add_argument("path", type=Path)
    pdf.add_argument("-o", "--output", type=Path, required=True)
    return p


def _verify(args: argparse.Namespace) -> int:
    """A directory is a recording package; a file is a sealed document."""
    tsa = TsaTrust(load_certificates(args.tsa_ca)) if args.tsa_ca else None
    if args.path.is_file():
        doc = verify_document(
            args.path.read_bytes(),
            _trusted_keys(args),
            trust_embedded_key=args.trust_embedded_key,
            tsa=tsa,
            path=str(args.path),
        )
        print(json.dumps(doc.as_json(), ensure_ascii=False, indent=2) if args.json else doc.text())
        return doc.exit_code
    report = verify_package(
        args.path,
        _trusted_keys(args),
        trust_embedded_key=args.trust_embedded_key,
        tsa=tsa,
    )
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print(report.text())
    return report.exit_code


def _document(args: argparse.Namespace) -> int:
    from .document_pdf import render_pdf  # fpdf2 and the font load only when asked

    pdf = render_pdf(args.path.read_bytes())
    args.output.write_bytes(pdf)
    print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None, prog: str = "recordings") -> int:
    parser = _parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "verify":
            return _verify(args)
        if args.command == "document":
            return _document(args)
        if args.command == "export":
            key = load_archive_private_key(args.key_file)
            bar = ProgressBar(
                sum(f.stat().st_size for f in (args.path / "segments").glob("*.cevr"))
                if (args.path / "segments").is_dir()
                else 1
            )
            try:
                result = export_package(
                    args.path,
                    key,
                    args.output,
                    progress=bar.update,
                    public_keys=_trusted_keys(args),
                    trust_embedded_key=args.trust_embedded_key,
                )
            except IntegrityError as exc:
                # keys.json missing, damaged or swapped: tampering, not a usage error.
                print(f"export refused: tampered: {exc}", file=sys.stderr)
                return EXIT_TAMPERED
            print(result.report.text())
            if result.refused is not None:
                print(f"export refused: {result.refused}", file=sys.stderr)
                return result.exit_code
            for f in result.files:
                print(f"wrote {f}")
            print(f"wrote {result.timeline}")
            for left in result.left_out:
                print(str(left))
            if result.left_out or result.report.problems:
                print(
                    "export incomplete: only the authenticated part was written (see above)",
                    file=sys.stderr,
                )
            return result.exit_code
        if args.command == "selftest":
            st = run_selftest(args.output, args.seconds)
            print(st.report.text())
            print(f"keys in {st.keys_dir} (private keys 0600); package in {st.recording}")
            return st.report.exit_code
        if args.command == "keygen":
            files = keygen(args.output)
            for f in (
                files.archive_private,
                files.archive_public,
                files.signing_private,
                files.signing_public,
            ):
                print(f"wrote {f}")
            return 0
        if args.command == "recover":
            results = recover(args.path, load_signing_key(args.signing_key))
            for res in results:
                if res.status != "recovered":
                    print(f"re-sealed {res.recording_id} as {res.status} (its manifest was lost)")
                    continue
                print(
                    f"recovered {res.recording_id}: gap {res.gap_from} .. {res.gap_to}, "
                    f"{res.torn_tail_bytes} torn bytes cut, {res.unauthenticated_records} "
                    "records after the last checkpoint kept as unauthenticated"
                )
            return 0
    except (RecordingError, OSError, FileExistsError, NotADocumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE  # pragma: no cover - argparse enforces a command
