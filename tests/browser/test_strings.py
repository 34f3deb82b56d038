"""The pages' strings (server/web/static/js/i18n.js): both languages say the same things, and
every error code and departure cause the server can send has a sentence in each."""

from __future__ import annotations

import re
from pathlib import Path

from signaling.errors import ErrorCode
from signaling.reasons import CloseReason

I18N = Path(__file__).resolve().parents[2] / "server" / "web" / "static" / "js" / "i18n.js"


def _keys() -> dict[str, set[str]]:
    source = I18N.read_text(encoding="utf-8")
    table = source[source.index("const STRINGS = {") : source.index("\n};\n")]
    zh, en = re.split(r"\n  en: \{", table, maxsplit=1)
    keys = re.compile(r'(?:^|[\s,{])([A-Za-z][A-Za-z0-9_]*):\s*"', re.M)

    def of(block: str) -> set[str]:
        return set(keys.findall(re.sub(r"//[^\n]*", "", block)))

    return {"zh-CN": of(zh), "en": of(en)}


def test_both_languages_have_the_same_strings() -> None:
    keys = _keys()
    assert len(keys["zh-CN"]) > 100
    assert keys["zh-CN"] - keys["en"] == set(), "missing in English"
    assert keys["en"] - keys["zh-CN"] == set(), "missing in Chinese"


def test_every_error_code_and_departure_cause_has_a_sentence() -> None:
    for language, keys in _keys().items():
        missing = {f"err_{c.value}" for c in ErrorCode} - keys
        assert not missing, (language, sorted(missing))
        missing = {f"cause_{r.value}" for r in CloseReason} - keys
        assert not missing, (language, sorted(missing))
