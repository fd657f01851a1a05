"""CI must run the browser test: with ``RHMNET_REQUIRE_BROWSER=1`` (set by ``.ci/run`` in CI) a missing browser,
driver or Selenium fails here instead of letting ``test_browser.py`` skip."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def test_browser_is_there_where_required() -> None:
    if os.environ.get("RHMNET_REQUIRE_BROWSER") != "1":
        pytest.skip("RHMNET_REQUIRE_BROWSER is not 1: the browser test may skip")
    found = {
        "chromium": shutil.which("chromium") or shutil.which("chromium-browser"),
        "chromedriver": shutil.which("chromedriver"),
        "selenium": importlib.util.find_spec("selenium"),
    }
    missing = [name for name, where in found.items() if where is None]
    assert not missing, f"the browser test cannot run: {', '.join(missing)} missing"
