"""Invitation links as QR codes, drawn on the server as SVG.

Why here and not in the browser: the link exists only in the issue response (its token is
stored hashed), so whatever draws the code must get it from that response anyway; drawing it
here with segno (pure Python, no dependencies, maintained, ISO/IEC 18004 conformant) keeps the
page free of a vendored JavaScript library and of a build or download step, lets the OpenAPI
document describe the QR code with the link, and lets the tests compare the code with segno's
own matrix for the link. The SVG is plain (no script, no external reference), so the page can
show it as an image (a data: URL) under its CSP.
"""

from __future__ import annotations

import io

import segno

# Error correction M (15%): still scans off a scratched phone screen or a glossy monitor,
# and a ~90-character link stays a small code (version 5-6).
ERROR_LEVEL = "m"


def qr_code(text: str) -> segno.QRCode:
    return segno.make(text, error=ERROR_LEVEL, micro=False)


def qr_svg(text: str) -> str:
    """`text` as a QR code: an SVG document with a 4-module quiet zone, black on white."""
    out = io.BytesIO()
    qr_code(text).save(
        out,
        kind="svg",
        scale=4,
        border=4,
        xmldecl=False,
        svgns=True,
        dark="#000",
        light="#fff",
        title="QR",
    )
    return out.getvalue().decode("utf-8")
