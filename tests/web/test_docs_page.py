"""The API reference page (/docs) in real headless Chromium, under the station's Content-Security-Policy.

The page is the station's own (no CDN): it asks for a token, reads /openapi.json with it and draws every
route and schema. The browser enforces the CSP the station sends, so a violation (an inline script, a
resource from elsewhere) would show as a console error; the test also proves the policy is enforced by
trying an inline script itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN, station_config
from tests.web.conftest import Console


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiThread]:
    tmp = tmp_path_factory.mktemp("docs-page")
    with ApiThread(station_config(), f"sqlite:///{tmp / 's.sqlite3'}") as api:
        yield api


def _open(browser: Any, url: str) -> tuple[Any, Console]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    console = Console(context.new_page())
    console.page.set_default_timeout(15_000)
    console.page.goto(url + "/docs")
    return context, console


def test_docs_page_shows_the_api_to_a_token_holder_only(
    browser: Any, station: ApiThread, shots: Path
) -> None:
    context, console = _open(browser, station.url)
    page = console.page
    try:
        page.wait_for_selector("#login:not([hidden])")
        assert page.locator("#doc").is_hidden()
        assert "test station" not in page.content()  # nothing about the station without a token

        page.fill("#token", "not-a-token")
        page.click("#login button[type=submit]")
        page.wait_for_function(  # a function: Playwright polls a bare expression with eval (CSP forbids it)
            "() => document.querySelector('#login-error').textContent.includes('token refused')"
        )
        assert page.locator("#doc").is_hidden()
        assert console.errors == [
            "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
        ]
        console.errors.clear()

        page.fill("#token", ROLE_TOKEN["viewer"])
        page.click("#login button[type=submit]")
        page.wait_for_selector("body[data-ready='1']")
        assert "test station" in page.locator("#title").text_content()
        assert page.locator(".op").count() >= 14
        heads = page.locator(".op h3").all_text_contents()
        assert "POST/v1/packages" in heads and "GET/v1/fleet" in heads
        assert page.locator("#schema-PackageIn").is_visible()
        assert "maxLength 2000" in page.locator("#schema-PackageIn").text_content()  # the note's limit
        page.screenshot(path=str(shots / "docs.png"), full_page=False)

        # The token is kept for the tab (like the console's): a reload shows the reference at once.
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert not console.errors, console.errors  # no CSP violation, nothing failed to load

        # The policy is enforced: an inline script is refused (and reported).
        ran = page.evaluate(
            """() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
                       document.head.append(s); return window.__inline === 1; }"""
        )
        assert ran is False
        for _ in range(50):  # the browser reports the violation on its own time
            if any("Content Security Policy" in e for e in console.errors):
                break
            page.wait_for_timeout(50)
        assert any("Content Security Policy" in e for e in console.errors), console.errors
    finally:
        context.close()
