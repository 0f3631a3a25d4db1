"""The refusal throttle: each actor's refusals are written in full up to a cap per
window, then counted and summarised once, so a flood cannot grow the audit log without
bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.doorstep.sharing import RefusalThrottle
from custom_components.doorstep.sharing.refusals import COALESCED, IN_FULL, WINDOW

START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def test_first_refusals_are_written_then_counted() -> None:
    clock = Clock()
    throttle = RefusalThrottle(in_full=3, window=timedelta(minutes=10), clock=clock)
    admitted = [throttle.admit("user:eve", "approve", "step_up_failed") for _ in range(5)]
    assert admitted == [True, True, True, False, False]
    # Another actor has a window of its own.
    assert throttle.admit("automation", "approve", "approve_in_card") is True
    # Nothing is due while the window is open.
    assert throttle.due() == []


def test_an_ended_window_gives_one_summary_with_counts() -> None:
    clock = Clock()
    throttle = RefusalThrottle(in_full=2, window=timedelta(minutes=10), clock=clock)
    for _ in range(2):
        assert throttle.admit("user:eve", "approve", "step_up_failed")
    for _ in range(4):
        clock.now += timedelta(seconds=30)
        assert not throttle.admit("user:eve", "approve", "step_up_rate_limited")
    assert not throttle.admit("user:eve", "preview", "outside_home_network")
    last = clock.now
    clock.now = START + timedelta(minutes=10)

    (summary,) = throttle.due()
    assert summary.actor == "user:eve"
    assert summary.total == 5
    assert summary.details() == {
        "action": COALESCED,
        "reason": COALESCED,
        "count": 5,
        "counts": {"approve:step_up_rate_limited": 4, "preview:outside_home_network": 1},
        "since": START.isoformat(timespec="seconds"),
        "last": last.isoformat(timespec="seconds"),
    }
    # Once only, and the next refusal opens a new window written in full.
    assert throttle.due() == []
    assert throttle.admit("user:eve", "approve", "step_up_failed") is True


def test_a_quiet_window_leaves_no_summary() -> None:
    clock = Clock()
    throttle = RefusalThrottle(in_full=2, window=timedelta(minutes=10), clock=clock)
    throttle.admit("user:eve", "approve", "step_up_failed")
    clock.now += timedelta(hours=1)
    assert throttle.due() == []


def test_growth_is_bounded_per_actor_and_window() -> None:
    """A thousand tries an hour for a day: at most IN_FULL + 1 entries per hour."""
    clock = Clock()
    throttle = RefusalThrottle(clock=clock)
    written = 0
    for _ in range(24 * 1000):
        written += len(throttle.due())
        written += throttle.admit("user:eve", "approve", "approval_needs_person")
        clock.now += WINDOW / 1000
    written += len(throttle.due(flush=True))
    assert written == 24 * (IN_FULL + 1)


def test_flush_and_restore() -> None:
    clock = Clock()
    throttle = RefusalThrottle(in_full=1, window=timedelta(minutes=10), clock=clock)
    throttle.admit("user:eve", "approve", "step_up_failed")
    throttle.admit("user:eve", "approve", "step_up_failed")
    summaries = throttle.due(flush=True)
    assert [s.total for s in summaries] == [1]
    # A summary that could not be written is kept, and counts on with later tries.
    throttle.restore(summaries)
    assert throttle.admit("user:eve", "approve", "step_up_failed") is False
    (again,) = throttle.due(flush=True)
    assert again.counts == {"approve:step_up_failed": 2}


def test_a_flood_about_one_request_leaves_another_requests_refusals_in_full() -> None:
    """A script spending an actor's cap (on junk, or on one request) does not hide that
    person's refusal on another request, such as a wrong password in the card."""
    throttle = RefusalThrottle(in_full=3)
    for _ in range(50):
        throttle.admit("user:eve", "approve", "invalid_approval")
        throttle.admit("user:eve", "approve", "step_up_failed", "01REQUESTA")
    assert throttle.admit("user:eve", "approve", "step_up_failed", "01REQUESTB") is True
    assert throttle.admit("user:eve", "approve", "step_up_failed", "01REQUESTA") is False
    summaries = {summary.request_id: summary for summary in throttle.due(flush=True)}
    assert set(summaries) == {None, "01REQUESTA"}
    assert summaries["01REQUESTA"].counts == {"approve:step_up_failed": 48}
    assert summaries[None].counts == {"approve:invalid_approval": 47}
