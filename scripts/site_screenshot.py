"""Screenshot of one page of the committed static site, for the README (docs/site.png).

    .venv/bin/python scripts/site_screenshot.py [leaderboards/site/pneumoniamnist.html]

Headless Debian Chromium through Playwright (never `playwright install`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    page_path = Path(sys.argv[1] if len(sys.argv) > 1 else "leaderboards/site/pneumoniamnist.html")
    out = ROOT / "docs" / "site.png"
    out.parent.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(page_path.resolve().as_uri())
        page.locator("#board thead button", has_text="accuracy@0.5").click()
        page.evaluate("document.querySelector('section.leaderboard').scrollIntoView()")
        page.screenshot(path=str(out))
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
