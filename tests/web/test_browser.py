"""The status page in a real headless Chromium: it loads, a job expands, the bars say the truth.

The screenshots are kept in `test-artifacts/` (gitignored) for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from switchboard.store.sql import SqlStore
from switchboard.web.server import WebServer
from tests.web.chromium import Chromium, executable
from tests.web.conftest import SiteMaker
from tests.web.seed import Seeded

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.skipif(
    executable() is None, reason="Chromium not installed (scripts/test.sh installs it)"
)


@pytest.fixture
def page_url(seeded: Seeded, make_site: SiteMaker, store: SqlStore) -> Iterator[str]:
    server = WebServer(make_site(), "127.0.0.1", 0).start()
    try:
        yield server.url + "/"
    finally:
        server.close()


@pytest.fixture(params=["sqlite"])  # the page is the same on both: one browser run is enough
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    from tests.conftest import Database

    return Database("sqlite", f"sqlite:///{tmp_path / 'switchboard.db'}")


def test_the_page_loads_a_job_expands_and_the_progress_bars_show_their_values(
    page_url: str, tmp_path: Path
) -> None:
    # a viewer in Illinois, as in background 002's screenshots
    with Chromium(tmp_path / "profile", 1280, 900, timezone="America/Chicago") as browser:
        browser.open(page_url)
        assert browser.evaluate("document.title").startswith("Switchboard")
        bars = browser.evaluate(
            """[...document.querySelectorAll('tr.collection')].map(row => {
                 const bar = row.querySelector('progress');
                 return {key: row.dataset.key, value: bar.value, max: bar.max,
                         indeterminate: !bar.hasAttribute('value'),
                         label: bar.getAttribute('aria-label'),
                         text: row.querySelector('.figures').textContent.trim()};
               })"""
        )
        fired = next(b for b in bars if b["key"] == "fullfield-rgb/2017-05-01")
        assert (fired["value"], fired["max"]) == (30, 30)
        assert fired["label"] == "30 of 30 members (100.0%)"
        assert fired["text"] == "30 / 30 · 100.0%"
        legacy = next(b for b in bars if b["key"] != "fullfield-rgb/2017-05-01")
        assert legacy["indeterminate"] and legacy["text"] == "30 / ?"

        group = "tbody.job-group[data-target='terra.multispectral.flir2tif']"
        assert browser.evaluate(f'document.querySelector("{group} tr.timeline").hidden')
        browser.evaluate(f'document.querySelector("{group} button.expand").click()')
        assert not browser.evaluate(f'document.querySelector("{group} tr.timeline").hidden')
        assert (
            browser.evaluate(
                f"document.querySelector(\"{group} button.expand\").getAttribute('aria-expanded')"
            )
            == "true"
        )
        timeline = browser.evaluate(f'document.querySelector("{group} tr.timeline").innerText')
        assert "refused by the broker: NOT_FOUND" in timeline and "queued" in timeline
        assert browser.evaluate(f'document.querySelector("{group} tr.timeline").offsetHeight') > 0
        # times were rewritten into the viewer's zone, the UTC original kept as the title
        first_time = browser.evaluate(
            "(() => { const t = document.querySelector('time'); "
            "return {text: t.textContent, title: t.title}; })()"
        )
        assert first_time["title"].startswith("2025-06-01T12:00:00")  # 12:00 UTC ...
        assert "07:00:00" in first_time["text"]  # ... is 7 in the morning in Chicago (CDT)
        assert browser.evaluate("document.getElementById('zone').textContent") == (
            "America/Chicago"
        )
        shot = browser.screenshot(ARTIFACTS / "status-page-1280.png")
        browser.open(page_url)  # a refresh keeps the rows the viewer opened
        assert not browser.evaluate(f'document.querySelector("{group} tr.timeline").hidden')
        other = "tbody.job-group[data-target='terra.stereo-rgb.bin2tif'] tr.timeline"
        assert browser.evaluate(f'document.querySelector("{other}").hidden')
    assert shot.stat().st_size > 10_000

    with Chromium(tmp_path / "phone", width=390, height=844) as phone:
        phone.open(page_url)
        # on a phone the tables become cards: no sideways scrolling of the whole page
        assert phone.evaluate("window.innerWidth") == 390
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        phone.screenshot(ARTIFACTS / "status-page-phone.png")
