import os

import pytest

from tests.support import debian

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def _install_chromium():
    """Install Debian's Chromium if it is missing and we may (root with apt-get)."""
    return debian.ensure("chromium", binary="chromium", path=CHROMIUM)[1]


@pytest.fixture(scope="session")
def browser():
    problem = _install_chromium()
    if problem:
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; Django's ORM calls in the same test are
    # still synchronous, so allow them (the documented way to combine the two).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
