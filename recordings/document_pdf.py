"""A sealed hearing document printed as a PDF in Chinese (fpdf2, a CJK TrueType font embedded).

The PDF is a readable, printable copy for the case file; the sealed JSON stays the evidence
(`shared-court verify` checks that one). So the PDF shows every value a reader needs to compare
with the sealed file: the text, each signer with their handwritten image, the hash each one
signed and the image's own hash, refusals and their reasons, the court's key id, fingerprint and
signature, and the RFC 3161 anchor's imprint if there is one.

The font: the first that exists of `$SHARED_COURT_CJK_FONT` and the Debian CJK fonts the
Makefile installs (fonts-wqy-microhei, fonts-wqy-zenhei, fonts-noto-cjk). fpdf2 embeds the
subset of glyphs used, so the PDF reads the same on a machine without the font.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from .document import _parse, signed_bytes, text_sha256
from .keys import fingerprint

__all__ = ["FONT_ENV", "FontMissingError", "find_cjk_font", "render_pdf"]

FONT_ENV = "SHARED_COURT_CJK_FONT"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
KIND_TITLE = {"transcript": "庭审笔录", "agreement": "调解协议书"}
OUTCOME = {
    "final": "已定稿",
    "effective": "已生效（最后一方签署）",
    "refused": "调解未成功（拒签）",
}
ROLE = {
    "plaintiff": "原告",
    "defendant": "被告",
    "agent": "代理人",
    "witness": "证人",
    "expert": "鉴定人",
    "interpreter": "翻译",
    "observer": "旁听",
    "mediator": "调解员",
    "judge": "法官",
    "clerk": "书记员",
    "station": "共享法庭站点",
}
WHERE = {"phone": "手机", "desk": "电脑", "station": "共享法庭站点"}
MARGIN = 18.0
SIGNATURE_IMAGE_W = 50.0
SIGNATURE_IMAGE_H = 20.0


class FontMissingError(RuntimeError):
    """No CJK font is installed: `make venv` installs one (Debian fonts-wqy-microhei)."""


def find_cjk_font() -> Path:
    """The CJK font file to embed. Raises FontMissingError."""
    env = os.environ.get(FONT_ENV)
    for name in (env, *FONT_CANDIDATES):
        if name and Path(name).is_file():
            return Path(name)
    raise FontMissingError(
        f"no CJK font found (set {FONT_ENV} or install fonts-wqy-microhei: make venv)"
    )


class _Pdf(FPDF):
    def __init__(self, footer_note: str) -> None:
        super().__init__(format="A4")
        self._note = footer_note

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("cjk", size=8)
        self.cell(0, 5, f"{self._note}    第 {self.page_no()} 页 / 共 {{nb}} 页", align="C")


def _line(pdf: FPDF, label: str, value: str, size: float = 10.5) -> None:
    pdf.set_font("cjk", size=size)
    pdf.multi_cell(0, 6, f"{label}：{value}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("cjk", size=13)
    pdf.cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    y = pdf.get_y()
    pdf.line(MARGIN, y, pdf.w - MARGIN, y)
    pdf.ln(2)


def _hash(pdf: FPDF, label: str, value: str) -> None:
    """Hashes in a monospaced-width line of their own, so a reader can compare them."""
    pdf.set_font("cjk", size=9)
    pdf.multi_cell(0, 5, f"{label}：", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Courier", size=8.5)
    pdf.multi_cell(0, 4.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _image(b64: str) -> bytes | None:
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith(b"\x89PNG\r\n\x1a\n") else None


def _signature(pdf: FPDF, i: int, sig: dict[str, Any], text_hash: str) -> None:
    if pdf.get_y() > pdf.h - 80:
        pdf.add_page()
    role = ROLE.get(str(sig.get("role")), str(sig.get("role")))
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 7, f"{i}. {sig.get('name')}（{role}）", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _line(pdf, "签署时间", str(sig.get("signed_at")), 10)
    _line(pdf, "手写签名位置", WHERE.get(str(sig.get("where")), str(sig.get("where"))), 10)
    ok = "与正文一致" if sig.get("text_sha256") == text_hash else "与正文不一致"
    _hash(pdf, f"所签文本 SHA-256（{ok}）", str(sig.get("text_sha256")))
    image = _image(str(sig.get("image_png_b64", "")))
    _hash(pdf, "签名图像 SHA-256", hashlib.sha256(image or b"").hexdigest())
    if image is None:
        _line(pdf, "手写签名", "（图像无法读取）", 10)
        return
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 6, "手写签名：", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    y = pdf.get_y()
    pdf.rect(MARGIN, y, SIGNATURE_IMAGE_W + 4, SIGNATURE_IMAGE_H + 4)
    pdf.image(
        io.BytesIO(image),
        x=MARGIN + 2,
        y=y + 2,
        w=SIGNATURE_IMAGE_W,
        h=SIGNATURE_IMAGE_H,
        keep_aspect_ratio=True,
    )
    pdf.set_y(y + SIGNATURE_IMAGE_H + 7)


def render_pdf(sealed: bytes) -> bytes:
    """The PDF bytes of a sealed document. It prints what the file says (verify checks it);
    raises NotADocumentError for bytes that are no document, FontMissingError without a font."""
    value = _parse(sealed)
    doc: dict[str, Any] = value.get("document") or {}
    cs: dict[str, Any] = value.get("court_signature") or {}
    text = str(doc.get("text", ""))
    text_hash = text_sha256(text)
    kind = str(doc.get("kind"))
    pdf = _Pdf("本件为电子签名文书的打印件；以 JSON 原件为准，可用 shared-court verify 离线校验")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_font("cjk", "", str(find_cjk_font()), collection_font_number=0)
    pdf.set_title(f"{KIND_TITLE.get(kind, kind)} {doc.get('case_number', '')}")
    pdf.set_creator("shared-court")
    pdf.set_lang("zh-CN")
    pdf.add_page()
    pdf.set_font("cjk", size=12)
    pdf.cell(0, 8, str(doc.get("court", "")), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("cjk", size=20)
    pdf.cell(0, 12, KIND_TITLE.get(kind, kind), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    _line(pdf, "案号", str(doc.get("case_number", "")))
    _line(pdf, "庭审", str(doc.get("hearing_title", "")))
    _line(pdf, "文书编号", f"{doc.get('document_id', '')}（第 {doc.get('version', '')} 版）")
    _line(pdf, "定稿时间", str(doc.get("finalised_at", "")))
    _line(pdf, "状态", OUTCOME.get(str(doc.get("outcome")), str(doc.get("outcome"))))

    _heading(pdf, "正文")
    pdf.set_font("cjk", size=11)
    pdf.multi_cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _hash(pdf, "正文 SHA-256", text_hash)

    _heading(pdf, "签署")
    signatures = doc.get("signatures") or []
    if not signatures:
        _line(pdf, "签署人", "无")
    for i, sig in enumerate(signatures, start=1):
        if isinstance(sig, dict):
            _signature(pdf, i, sig, text_hash)
    for ref in doc.get("refusals") or []:
        if isinstance(ref, dict):
            role = ROLE.get(str(ref.get("role")), str(ref.get("role")))
            _line(pdf, "拒绝签署", f"{ref.get('name')}（{role}），{ref.get('refused_at')}")
            _line(pdf, "拒签理由", str(ref.get("reason", "")))
    extra = doc.get("extra") if isinstance(doc.get("extra"), dict) else {}
    not_signed = extra.get("not_signed") if isinstance(extra, dict) else None
    if isinstance(not_signed, list) and not_signed:
        _line(pdf, "未签署本文本（待签或签名已失效）", "、".join(str(p) for p in not_signed))

    _heading(pdf, "法院电子签章与校验值")
    _line(pdf, "签名算法", str(cs.get("alg", "")), 10)
    _line(pdf, "法院密钥编号", str(cs.get("key_id", "")), 10)
    try:
        raw_pub = base64.b64decode(str(cs.get("public_key", "")), validate=True)
    except (binascii.Error, ValueError):
        raw_pub = b""
    _hash(pdf, "法院公钥指纹（SHA-256）", fingerprint(raw_pub))
    _hash(pdf, "签章覆盖内容 SHA-256", hashlib.sha256(signed_bytes(value)).hexdigest())
    _hash(pdf, "法院签名（Ed25519，Base64）", str(cs.get("signature", "")))
    anchor = value.get("time_anchor")
    if isinstance(anchor, dict):
        _hash(pdf, "可信时间戳（RFC 3161）摘要", str(anchor.get("imprint", "")))
    else:
        _line(pdf, "可信时间戳", "无", 10)
    return bytes(pdf.output())
