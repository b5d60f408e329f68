"""The status page and the JSON API against a database holding collections, jobs and failures."""

from __future__ import annotations

import html
import re

from switchboard.metrics import Metrics
from tests.web.conftest import SiteMaker, body_json, daemon_live, get
from tests.web.seed import Seeded

FIRED_KEY = "fullfield-rgb/2017-05-01"


def test_status_page_shows_the_demo_collections_jobs_rules_and_failed_submissions(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    response = get(make_site(), "/")
    assert response.status == 200
    assert response.content_type.startswith("text/html")
    page = response.body.decode()
    assert f'data-key="{FIRED_KEY}"' in page
    assert '<progress value="30" max="30" aria-label="30 of 30 members (100.0%)"' in page
    assert "30 / 30 · 100.0%" in page
    assert "30 of an unknown number of members" in page  # the legacy collection, no total
    for target in ("terra.multispectral.flir2tif", "terra.stereo-rgb.bin2tif"):
        assert f'data-target="{target}"' in page
    assert "refused by the broker: NOT_FOUND 0" in page
    assert "stereo-bin2tif" in page and "rules/terra.yaml:4" not in page  # no ruleset loaded
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_page_escapes_what_it_shows(seeded: Seeded, make_site: SiteMaker, store: object) -> None:
    from sqlalchemy import update

    from switchboard.store.statements import submissions

    with store.engine.begin() as connection:  # type: ignore[attr-defined]  # the SqlStore
        connection.execute(
            update(submissions)
            .where(submissions.c.job_id == seeded.failed[0])
            .values(last_error="<script>alert(1)</script>")
        )
    page = get(make_site(), "/").body.decode()
    assert "<script>alert(1)</script>" not in page
    assert html.escape("<script>alert(1)</script>") in page


def test_collections_api_is_paginated_open_ones_first(seeded: Seeded, make_site: SiteMaker) -> None:
    site = make_site()
    first = body_json(get(site, "/api/collections?limit=1"))
    assert first["total"] == 2 and first["next_offset"] == 1
    [open_one] = first["items"]
    assert open_one["state"] == "open" and open_one["fired_at"] is None
    second = body_json(get(site, "/api/collections?limit=1&offset=1"))
    [fired] = second["items"]
    assert second["next_offset"] is None
    assert (fired["key"], fired["member_count"], fired["expected"]) == (FIRED_KEY, 30, 30)
    assert fired["percent"] == 100.0 and fired["manifest_id"] and fired["job_id"]
    manifest = body_json(get(site, f"/api/manifests/{fired['manifest_id']}?limit=5"))
    assert manifest["member_count"] == 30 and len(manifest["items"]) == 5
    assert manifest["next_offset"] == 5


def test_jobs_api_filters_by_target_status_and_dataset(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    site = make_site()
    everything = body_json(get(site, "/api/jobs?limit=500"))
    assert everything["total"] == 74 and everything["source"] == "jobs"
    failed = body_json(get(site, "/api/jobs?status=failed"))
    assert sorted(j["job_id"] for j in failed["items"]) == sorted(seeded.failed)
    assert {j["latest_message"] for j in failed["items"]} == {
        "refused by the broker: NOT_FOUND 0",
        "refused by the broker: NOT_FOUND 1",
    }
    stereo = body_json(get(site, "/api/jobs?target=terra.stereo-rgb.bin2tif&limit=500"))
    assert {j["status"] for j in stereo["items"]} == {"submitted"}
    assert stereo["total"] == len(seeded.sent)
    one = stereo["items"][0]
    same_dataset = body_json(get(site, f"/api/jobs?dataset={one['dataset_id']}&limit=500"))
    assert one["job_id"] in {j["job_id"] for j in same_dataset["items"]}
    assert {j["dataset_id"] for j in same_dataset["items"]} == {one["dataset_id"]}
    assert same_dataset["total"] < everything["total"]
    assert body_json(get(site, "/api/jobs?limit=2&offset=2"))["next_offset"] == 4


def test_a_job_has_its_timeline_and_an_unknown_job_is_404(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    site = make_site()
    failed = body_json(get(site, f"/api/jobs/{seeded.failed[1]}"))
    assert [(e["status"], e["source"]) for e in failed["timeline"]] == [("failed", "relay")]
    assert failed["timeline"][-1]["message"] == "refused by the broker: NOT_FOUND 1"
    sent = body_json(get(site, f"/api/jobs/{seeded.sent[0]}"))
    assert [e["status"] for e in sent["timeline"]] == ["submitted"]
    retrying = body_json(get(site, f"/api/jobs/{seeded.retrying}"))
    assert retrying["status"] == "pending" and retrying["timeline"] == []
    assert (retrying["attempts"], retrying["last_attempt_error"]) == (1, "connection reset")
    missing = get(site, "/api/jobs/no-such-job")
    assert missing.status == 404 and body_json(missing) == {"error": "no job no-such-job"}


def test_expanding_a_target_on_the_page_lists_its_jobs_with_their_timelines(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    page = get(make_site(), "/?target=terra.multispectral.flir2tif").body.decode()
    assert page.count('class="job-group"') == 1
    assert page.count('class="job" data-job=') == 15
    assert 'refused by the broker: NOT_FOUND 0</td><td class="wide">relay</td>' in page
    assert "attempt 1 failed: connection reset" in page  # the pending one waiting to retry
    empty = get(make_site(), "/?status=stopped").body.decode()
    assert "No jobs match this filter." in empty


def test_rules_api_counts_matches_errors_and_timeouts_since_start_and_names_the_version(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    metrics = Metrics()
    metrics.rule_outcomes(
        ["stereo-bin2tif", "stereo-bin2tif", "flir2tif"],
        [
            ("flir2tif", "raised KeyError at rules/x.py:3: 'a'"),
            ("scanner_ply2las", "timed out after its time limit of 2.0 s"),
        ],
    )
    site = make_site(daemon_live(seeded, metrics))
    answer = body_json(get(site, "/api/rules?limit=500"))
    assert re.fullmatch(r"[0-9a-f]{12}", answer["version"])
    rules = {r["name"]: r for r in answer["items"]}
    assert rules["stereo-bin2tif"]["matches"] == 2
    assert rules["stereo-bin2tif"]["submissions"] == 20
    assert (rules["flir2tif"]["matches"], rules["flir2tif"]["errors"]) == (1, 1)
    assert rules["flir2tif"]["failed_submissions"] == 2
    assert rules["scanner_ply2las"]["timeouts"] == 1
    assert rules["stereo-bin2tif"]["source"].endswith("terra.yaml:4")
    assert body_json(get(site, "/api/rules?limit=3"))["next_offset"] == 3


def test_dead_letters_api_lists_failed_submissions_with_reasons_and_counts_since_start(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    metrics = Metrics()
    metrics.dead_lettered("malformed", 3)
    metrics.dead_lettered("oversized", 1)
    answer = body_json(get(make_site(daemon_live(seeded, metrics)), "/api/dead-letters"))
    assert answer["total"] == 2
    assert {f["reason"] for f in answer["items"]} == {
        "refused by the broker: NOT_FOUND 0",
        "refused by the broker: NOT_FOUND 1",
    }
    assert answer["dead_letters_since_start"] == {"malformed": 3, "oversized": 1}


def test_unknown_paths_are_404_writes_are_405_and_bad_parameters_400(
    seeded: Seeded, make_site: SiteMaker
) -> None:
    site = make_site()
    assert get(site, "/nope").status == 404
    assert get(site, "/api/nope").status == 404
    assert get(site, "/static/../site.py").status == 404
    assert get(site, "/static/status.js").status == 200
    assert get(site, "/metrics").status == 404  # this site was given no registry
    for method in ("POST", "PUT", "DELETE"):
        refused = site.respond(method, "/api/jobs", {})
        assert refused.status == 405 and refused.headers["Allow"] == "GET, HEAD"
    bad = get(site, "/api/jobs?limit=lots")
    assert bad.status == 400 and "limit must be a whole number" in body_json(bad)["error"]


def test_header_says_version_queue_uptime_and_lag(seeded: Seeded, make_site: SiteMaker) -> None:
    from tests.conftest import START

    header = body_json(get(make_site(), "/api/status"))
    assert header["queue"] == "switchboard"
    assert header["outbox"]["failed"] == 2 and header["outbox"]["sent"] == len(seeded.sent)
    assert header["lag_s"] == 0.0  # the fake clock has not moved since the rows were queued
    assert header["started_at"] == START.isoformat()
    assert header["version"] and header["daemon"] is False
