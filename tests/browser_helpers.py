"""A real headless Chromium for the HTML views: Debian's ``chromium`` and
``chromium-driver`` driven by selenium (no browser is ever downloaded).

:func:`open_browser` starts one with a fresh profile and every background service off
(no sync, updates, field trials: the machine has no network, and the page must not need
one), or says why it cannot, so tests skip with that reason. :func:`load` opens a file
and waits for the page's ``xp.ready``, an event, not a fixed time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--disable-dev-shm-usage", "--window-size=1400,1000", "--hide-scrollbars")
#: The longest any page may take to become ready (a loaded 2-core CI machine, 10,000 runs);
#: tests wait for the event and only fail at this bound.
READY_TIMEOUT = 240


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                      else None)
        if path:
            return path
    return None


def why_no_browser() -> str | None:
    """None when a browser can run here, else the reason (for pytest.skip)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if _find(CHROMIUM_NAMES) is None:
        return "no Chromium found (apt-get install chromium chromium-driver)"
    if _find(DRIVER_NAMES) is None:
        return "no chromedriver found (apt-get install chromium-driver)"
    return None


class Browser:
    """A headless Chromium with a request log (Chrome DevTools performance log)."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="xp-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = _find(CHROMIUM_NAMES) or ""
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        service = Service(executable_path=_find(DRIVER_NAMES) or "")
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_script_timeout(READY_TIMEOUT)
        self.driver.execute_cdp_cmd("Network.enable", {})

    def load(self, path: Path) -> float:
        """Open ``path``, wait until its views are drawn; return the load time in ms that
        the page measured (navigation start to xp ready)."""
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.get_log("performance")  # drop what came before
        self.driver.get(path.resolve().as_uri())
        WebDriverWait(self.driver, READY_TIMEOUT, poll_frequency=0.05).until(
            lambda d: d.execute_script("return !!(window.xp && window.xp.ready)"))
        return float(self.js("return performance.now()"))

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def requests(self) -> list[str]:
        """URLs of every request the browser sent since the last :meth:`load`."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser")
                if e.get("level") == "SEVERE"]

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
