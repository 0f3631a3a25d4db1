"""What the gate needs from the recorder, as a Protocol so this room stays self-contained.

``media.recorder`` implements it for real; tests use a directory-backed stand-in. The
methods are blocking (they may scan a directory or open a file): the gate only calls
them from a worker thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import BinaryIO, Protocol

from .models import ClipInfo


class ClipSource(Protocol):
    def clips_in_window(
        self, start: datetime, end: datetime, doorbell_ids: tuple[str, ...] | None
    ) -> list[ClipInfo]:
        """Finished clips overlapping [start, end), optionally only from these doorbells.

        Unknown doorbell ids simply match nothing: a requester must not be able to probe
        which doorbells exist.
        """

    def open_clip(self, clip_id: str) -> BinaryIO:
        """Open a finished clip for reading; FileNotFoundError if it is gone.

        ``clip_id`` is always a validated ULID when the gate calls this, but an
        implementation must still refuse any path outside its clips directory.
        """
