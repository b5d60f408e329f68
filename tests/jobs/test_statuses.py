"""The status vocabulary: pyclowder's, Clowder v2's and Ray's words mapped onto ours."""

from __future__ import annotations

import pytest

from switchboard.jobs import statuses as st


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("StatusMessage.start: Started processing.", ("started", "Started processing.")),
        ("StatusMessage.processing: Downloading file.", ("processing", "Downloading file.")),
        ("StatusMessage.done: Done processing.", ("succeeded", "Done processing.")),
        ("StatusMessage.skip: Skipped in check_message", ("skipped", "Skipped in check_message")),
        ("StatusMessage.error: Failed: boom", ("failed", "Failed: boom")),
        ("StatusMessage.retry: (#1) boom", ("resubmitted", "(#1) boom")),
        ("SUCCEEDED: ok", ("succeeded", "ok")),
        ("ERROR: no", ("failed", "no")),
        ("RESUBMITTED", ("resubmitted", "")),
    ],
)
def test_pyclowder_and_clowder_v2_status_words_map_to_ours(wire, expected) -> None:
    assert st.extractor_status(wire) == expected


def test_a_status_without_a_known_word_falls_back_to_message_type() -> None:
    assert st.extractor_status("Done.", "StatusMessage.done") == ("succeeded", "Done.")
    assert st.extractor_status("whatever", None) is None


def test_ray_and_clowder_job_words_map_to_ours() -> None:
    assert [st.ray_status(w) for w in ("PENDING", "running", "JobStatus.STOPPED")] == [
        "submitted",
        "started",
        "stopped",
    ]
    assert st.ray_status("SUCCEEDED") == "succeeded" and st.ray_status("FAILED") == "failed"
    assert st.clowder_job_status("ERROR") == "failed"
    assert st.clowder_job_status("nope") is None


def test_only_the_four_end_states_are_terminal() -> None:
    assert {s for s in st.STATUSES if st.is_terminal(s)} == {
        "succeeded",
        "skipped",
        "failed",
        "stopped",
    }
