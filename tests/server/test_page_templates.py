"""The page templates: every shared part they ask for exists and is put in place."""

from __future__ import annotations

from server.web.pages import PAGES, TEMPLATES_DIR, page_html


def test_every_page_is_served_whole() -> None:
    for name in {*PAGES.values(), "room.html"}:
        html = page_html(name)
        assert "<!-- include:" not in html, name
        assert html.count("<header") == 1, name


def test_the_staff_header_is_written_once_and_shown_on_every_staff_page() -> None:
    header = (TEMPLATES_DIR / "partials" / "staff_header.html").read_text(encoding="utf-8")
    using = [
        p.name for p in TEMPLATES_DIR.glob("*.html") if "include: staff_header" in p.read_text()
    ]
    assert {"dashboard.html", "case.html", "case_new.html", "hearing.html"} <= set(using)
    for name in using:
        html = page_html(name)
        assert header in html, name
        # Nothing else in the template repeats what the partial holds.
        assert html.count('id="lang"') == 1, name
