"""Headless Debian Chromium driven by selenium for the console's browser tests (no browser download)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not any(shutil.which(b) for b in CHROMIUM):
        return "Debian's chromium is not installed (apt-get install chromium)"
    if shutil.which(DRIVER) is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e .[dev])"
    return None


def browser(width: int = 1280, height: int = 800):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(b) for b in CHROMIUM if shutil.which(b))
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which(DRIVER)), options=options)


def wait_for(check: Callable[[], object], what: str, timeout: float = 60.0, every: float = 0.1):
    """Poll ``check`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # the page may be between two states (stale element, not yet there)
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def not_blank(png: Path) -> int:
    """How many distinct colours the screenshot has (a blank page has one or two)."""
    from PIL import Image

    with Image.open(png) as im:
        return len(im.convert("RGB").getcolors(maxcolors=1 << 20) or [])
