"""A headless Debian Chromium driven over the Chrome DevTools protocol (no browser download)."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

import websocket

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
_LISTENING = re.compile(r"DevTools listening on ws://[^:]+:(\d+)/")


def executable() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


class Chromium:
    """One headless browser with one page: `with Chromium(profile_dir, width, height) as b:`."""

    def __init__(
        self, profile: Path, width: int = 1280, height: int = 900, timezone: str = "UTC"
    ) -> None:
        self.profile = profile
        self.width, self.height = width, height
        self.timezone = timezone
        self._ids = itertools.count(1)
        self.events: list[str] = []  # methods of the events seen since the last `open`

    def __enter__(self) -> Chromium:
        browser = executable()
        assert browser is not None, "no Chromium on PATH"
        self.profile.mkdir(parents=True, exist_ok=True)
        self.log = self.profile / "chromium.log"  # a file, not a pipe nobody drains
        with self.log.open("w") as log:
            self.process = self._start(browser, log)
        port = self._wait_for_devtools()
        self.socket = websocket.create_connection(self._page_ws(port), timeout=30)
        self.call("Page.enable")
        self.call("Runtime.enable")
        # the window has a minimum width; the viewport is set exactly (a phone's is narrow)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=self.width < 700,
        )
        self.call("Emulation.setTimezoneOverride", timezoneId=self.timezone)
        return self

    def _start(self, browser: str, log: IO[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                browser,
                "--headless=new",
                "--no-sandbox",  # tests run as root in a container; the page is our own
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    def __exit__(self, *exc: object) -> None:
        try:
            if hasattr(self, "socket"):
                self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _wait_for_devtools(self) -> str:
        for _ in range(600):
            found = _LISTENING.search(self.log.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        raise AssertionError(f"Chromium gave no DevTools address:\n{self.log.read_text()[-2000:]}")

    @staticmethod
    def _page_ws(port: str) -> str:
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
                pages = [t for t in json.load(answer) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.1)
        raise AssertionError("Chromium opened no page")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are noted)."""
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            answer = json.loads(self.socket.recv())
            if "method" in answer:
                self.events.append(answer["method"])
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))

    def open(self, url: str) -> None:
        """Navigate and wait for the new page's load event (its deferred scripts have run)."""
        self.events.clear()
        navigated = self.call("Page.navigate", url=url)
        if "errorText" in navigated:
            raise AssertionError(f"{url}: {navigated['errorText']}")
        while "Page.loadEventFired" not in self.events:
            answer = json.loads(self.socket.recv())  # the socket's timeout bounds the wait
            if "method" in answer:
                self.events.append(answer["method"])

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page (not only the window), as a PNG file."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
