"""Accessibility check with axe-core inside the page (the script bundled by the
axe-playwright-python package; we run it ourselves so the check reads as one call)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from playwright.async_api import Page

AXE_JS = files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")
BLOCKING = {"serious", "critical"}


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact serious or critical on the page as it is now, each as
    {id, impact, help, targets}. WCAG 2.1 A and AA rules."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Through the DevTools protocol, which the page's CSP (script-src 'self') does not
        # govern: the page under test keeps its real policy.
        await page.evaluate(AXE_JS)
    result: dict[str, Any] = await page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]
