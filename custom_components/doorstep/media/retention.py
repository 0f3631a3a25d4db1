"""Which clips retention deletes: too old, or the oldest while the total is too big.

Pure, so the rule can be tested without files. Held clips (legal hold: an open sharing
request, or a live pickup link) are never chosen, even when that leaves the total over
the limit: a request waiting for a person's answer outranks the disk budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol


class RetainedClip(Protocol):
    """What retention looks at."""

    @property
    def id(self) -> str: ...

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...

    @property
    def size(self) -> int: ...


def plan_retention[ClipT: RetainedClip](
    clips: Iterable[ClipT],
    *,
    now: datetime,
    max_age: timedelta | None,
    max_bytes: int | None,
    held: frozenset[str],
) -> list[ClipT]:
    """The clips to delete, oldest first.

    A clip is too old when it *ended* more than ``max_age`` ago, so a long clip is kept
    until all of it has aged out. ``None`` turns a limit off.
    """
    if max_age is not None and max_age < timedelta(0):
        raise ValueError("max_age must not be negative")
    if max_bytes is not None and max_bytes < 0:
        raise ValueError("max_bytes must not be negative")
    ordered = sorted(clips, key=lambda clip: (clip.start, clip.id))
    total = sum(clip.size for clip in ordered)
    cutoff = None if max_age is None else now - max_age
    doomed: list[ClipT] = []
    for clip in ordered:
        if clip.id in held:
            continue
        too_old = cutoff is not None and clip.end < cutoff
        too_big = max_bytes is not None and total > max_bytes
        if too_old or too_big:
            doomed.append(clip)
            total -= clip.size
    return doomed
