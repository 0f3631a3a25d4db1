"""How many refusals reach the audit log: each one, up to a cap, then a count.

Every refused attempt (approving, previewing, reading the audit trail, ...) is recorded,
but a script looping on a stolen token could otherwise append, and fsync, one line per
try for ever. So each actor gets :data:`IN_FULL` entries written in full per
:data:`WINDOW` and per request; further refusals in that window are counted by action and
reason, and one summary entry with those counts closes the window.

The cap is per request, not per actor alone, so that noise about one request (or about
none: unknown ids, malformed calls, which all share one bucket) can never crowd out a
refusal about another. A person's wrong password on the request in front of them is
always written, whatever a script did with their token earlier. Requests exist only
when a requester files them, and the gate caps how many are open, so per actor the log
still grows by at most ``IN_FULL + 1`` entries per window for each request plus one
bucket, whatever the rate of tries.

The actor is the audit log's own label (``user:<id>`` or ``automation``), which only
Home Assistant can mint, so an attacker cannot spread tries over fresh names; the
request is one the gate knows (the caller passes ``None`` for an id it does not). Nothing
an attacker sent ends up in a key: actions and reasons come from the glue's own words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Enough to see what someone tried, one by one, in any real session; few enough that a
# flood costs the disk about 11 lines an hour per user.
IN_FULL = 10
WINDOW = timedelta(hours=1)
# The summary entry's reason, and what its details say.
COALESCED = "coalesced"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Window:
    opened: datetime
    written: int = 0
    held_back: Counter[str] = field(default_factory=Counter)
    last: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefusalSummary:
    """The refusals of one actor about one request (or none) that were counted, not
    written, in one window."""

    actor: str
    request_id: str | None
    # When the window opened (its first refusal, written in full) and the last one counted.
    since: datetime
    last: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def details(self) -> dict[str, Any]:
        """The summary's audit details: counts per ``action:reason``, and when."""
        return {
            "action": COALESCED,
            "reason": COALESCED,
            "count": self.total,
            "counts": dict(sorted(self.counts.items())),
            "since": self.since.astimezone(UTC).isoformat(timespec="seconds"),
            "last": self.last.astimezone(UTC).isoformat(timespec="seconds"),
        }


class RefusalThrottle:
    """Decides, per actor and window, which refusals are written in full.

    Lives for one run of the hub; a restart starts every actor's window afresh, which
    at worst writes ``IN_FULL`` more lines per restart.
    """

    def __init__(
        self,
        *,
        in_full: int = IN_FULL,
        window: timedelta = WINDOW,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._in_full = in_full
        self._window = window
        self._clock = clock
        self._windows: dict[tuple[str, str | None], _Window] = {}

    def admit(self, actor: str, action: str, reason: str, request_id: str | None = None) -> bool:
        """Count one refusal; True when it should be written in full.

        Call :meth:`due` first, so a window that has ended is summarised before a new
        one opens.
        """
        now = self._clock()
        key = (actor, request_id)
        window = self._windows.get(key)
        if window is None or now - window.opened >= self._window:
            window = self._windows[key] = _Window(opened=now)
        if window.written < self._in_full:
            window.written += 1
            return True
        window.held_back[f"{action}:{reason}"] += 1
        window.last = now
        return False

    def due(self, *, flush: bool = False) -> list[RefusalSummary]:
        """Summaries of windows that have ended (all of them with ``flush``), once each."""
        now = self._clock()
        summaries = []
        for key, window in list(self._windows.items()):
            if not flush and now - window.opened < self._window:
                continue
            del self._windows[key]
            if window.held_back and window.last is not None:
                summaries.append(
                    RefusalSummary(
                        actor=key[0],
                        request_id=key[1],
                        since=window.opened,
                        last=window.last,
                        counts=dict(window.held_back),
                    )
                )
        return summaries

    def restore(self, summaries: list[RefusalSummary]) -> None:
        """Put back summaries that could not be written, to be tried again later."""
        for summary in summaries:
            window = self._windows.setdefault(
                (summary.actor, summary.request_id),
                _Window(opened=summary.since, written=self._in_full),
            )
            window.held_back.update(summary.counts)
            if window.last is None or window.last < summary.last:
                window.last = summary.last
