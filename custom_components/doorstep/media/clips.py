"""Finished clips on disk: ``<config>/doorstep/clips/<ULID>.mp4`` plus a JSON sidecar.

This is the only place that turns a clip id into a path, and it always goes through
``clip_contract.child_path``: ids arrive from URLs, service calls and stored state, and a
strict id whitelist plus a resolved-parent check keeps every path inside the directory.

A clip is published in two renames: the sidecar first, then the video. So a ``.mp4``
never exists without its metadata, and a sidecar without a ``.mp4`` is a commit that a
crash interrupted; the index rebuilt at start-up drops those and every ``.part`` file.

Everything here blocks (files, fsync); the recorder and the sharing gate call it from
worker threads, so the in-memory index is guarded by a lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
import json
import logging
import os
from pathlib import Path
import threading
from typing import Any, BinaryIO, Final

# The ground floor, below the rooms; an absolute import, because a relative one would
# climb through the Home Assistant glue package.
from custom_components.doorstep.clip_contract import (
    ClipInfo,
    InvalidId,
    child_path,
    is_valid_id,
    new_id,
)
from custom_components.doorstep.durable import sync_directory, write_synced

from .exceptions import ClipHeld, InvalidClipId
from .recorder_writer import recording_error
from .retention import plan_retention

_LOGGER = logging.getLogger(__name__)

VIDEO_SUFFIX: Final = ".mp4"
SIDECAR_SUFFIX: Final = ".json"
TEMP_SUFFIX: Final = ".part"
SIDECAR_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class ClipRecord:
    """One finished clip, as its sidecar describes it."""

    id: str
    doorbell_id: str
    start: datetime
    end: datetime
    size: int
    reason: str
    triggers: int = 1

    @property
    def duration(self) -> timedelta:
        """How much video the clip holds."""
        return self.end - self.start

    def info(self) -> ClipInfo:
        """The view the sharing gate works with."""
        return ClipInfo(self.id, self.doorbell_id, self.start, self.end, self.size)

    def to_json(self) -> dict[str, Any]:
        """The sidecar's content."""
        return {
            "version": SIDECAR_VERSION,
            "id": self.id,
            "doorbell_id": self.doorbell_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "size": self.size,
            "reason": self.reason,
            "triggers": self.triggers,
        }

    @classmethod
    def from_json(cls, data: object) -> ClipRecord:
        """Parse a sidecar; ValueError for anything that is not one of ours."""
        if not isinstance(data, dict) or data.get("version") != SIDECAR_VERSION:
            raise ValueError("not a version 1 clip sidecar")
        clip_id, doorbell_id, reason = data.get("id"), data.get("doorbell_id"), data.get("reason")
        size, triggers = data.get("size"), data.get("triggers", 1)
        if not is_valid_id(clip_id) or not isinstance(doorbell_id, str):
            raise ValueError("bad id or doorbell id")
        if not isinstance(reason, str) or not isinstance(size, int) or size < 0:
            raise ValueError("bad reason or size")
        if not isinstance(triggers, int) or triggers < 1:
            raise ValueError("bad trigger count")
        assert isinstance(clip_id, str)
        return cls(
            clip_id,
            doorbell_id,
            _parse_time(data.get("start")),
            _parse_time(data.get("end")),
            size,
            reason,
            triggers,
        )


class ClipStore:
    """The clips directory; implements the clip contract's ``ClipSource`` protocol.

    Creating one creates the directory if needed and rebuilds the index from disk
    (blocking: call it from a worker thread in Home Assistant).
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._root = root.resolve()
        self._lock = threading.Lock()
        self._index: dict[str, ClipRecord] = {}
        self.rescan()

    @property
    def root(self) -> Path:
        """The clips directory (resolved)."""
        return self._root

    # --- writing (used by the recorder) ----------------------------------------------

    @staticmethod
    def new_clip_id(start: datetime) -> str:
        """A fresh ULID; its time part is the clip's start, so ids sort by time."""
        return new_id(start)

    def temp_path(self, clip_id: str) -> Path:
        """Where the writer puts the video of ``clip_id`` until it is committed."""
        return self._path(clip_id, VIDEO_SUFFIX + TEMP_SUFFIX)

    def commit(self, record: ClipRecord) -> ClipRecord:
        """Publish a written clip: sidecar, then the video, each renamed into place.

        The video at :meth:`temp_path` must already be closed and fsynced. On failure
        every file of the clip is removed and a :class:`RecordingError` (or
        :class:`StorageFull`) is raised.
        """
        temp = self.temp_path(record.id)
        video = self._path(record.id, VIDEO_SUFFIX)
        sidecar = self._path(record.id, SIDECAR_SUFFIX)
        sidecar_temp = self._path(record.id, SIDECAR_SUFFIX + TEMP_SUFFIX)
        try:
            # Footage is private to the hub, whatever the umask says.
            os.chmod(temp, 0o600)
            write_synced(sidecar_temp, json.dumps(record.to_json()).encode())
            os.replace(sidecar_temp, sidecar)
            os.replace(temp, video)
            # One directory sync makes both renames durable.
            sync_directory(self._root)
        except OSError as err:
            for path in (temp, sidecar_temp, video, sidecar):
                path.unlink(missing_ok=True)
            raise recording_error(err, f"saving clip {record.id} failed") from err
        with self._lock:
            self._index[record.id] = record
        return record

    def discard(self, clip_id: str) -> None:
        """Remove the temporary files of a clip that will not be committed."""
        for suffix in (VIDEO_SUFFIX + TEMP_SUFFIX, SIDECAR_SUFFIX + TEMP_SUFFIX):
            self._path(clip_id, suffix).unlink(missing_ok=True)

    # --- reading ----------------------------------------------------------------------

    def get(self, clip_id: str) -> ClipRecord | None:
        """The record of a finished clip, or None (also for ids that are not ids)."""
        if not is_valid_id(clip_id):
            return None
        with self._lock:
            return self._index.get(clip_id)

    def list_clips(self) -> list[ClipRecord]:
        """Every finished clip, oldest first."""
        with self._lock:
            records = list(self._index.values())
        return sorted(records, key=lambda record: (record.start, record.id))

    def known_clips(self, clip_ids: Iterable[str]) -> list[ClipInfo]:
        """The finished clips among ``clip_ids``, in that order; unknown ids are skipped."""
        with self._lock:
            records = [self._index.get(clip_id) for clip_id in clip_ids]
        return [record.info() for record in records if record is not None]

    def total_bytes(self) -> int:
        """Bytes used by finished clips."""
        with self._lock:
            return sum(record.size for record in self._index.values())

    def doorbell_bytes(self, doorbell_id: str) -> int:
        """Bytes used by one doorbell's finished clips."""
        with self._lock:
            return sum(r.size for r in self._index.values() if r.doorbell_id == doorbell_id)

    def clips_in_window(
        self, start: datetime, end: datetime, doorbell_ids: tuple[str, ...] | None
    ) -> list[ClipInfo]:
        """Finished clips overlapping [start, end), optionally only from these doorbells."""
        return [
            record.info()
            for record in self.list_clips()
            if record.start < end
            and record.end > start
            and (doorbell_ids is None or record.doorbell_id in doorbell_ids)
        ]

    def clip_path(self, clip_id: str) -> Path:
        """The file of a finished clip (for local playback); FileNotFoundError if none."""
        path = self._path(clip_id, VIDEO_SUFFIX)
        if self.get(clip_id) is None:
            raise FileNotFoundError(f"no clip {clip_id}")
        return path

    def open_clip(self, clip_id: str) -> BinaryIO:
        """Open a finished clip for reading; FileNotFoundError if it is gone.

        :class:`InvalidClipId` for anything that is not a clip id, before any file is
        touched. The final component is opened without following a symlink, in case
        one is planted after the path was checked.
        """
        path = self.clip_path(clip_id)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return os.fdopen(fd, "rb")

    # --- deleting ---------------------------------------------------------------------

    def delete(self, clip_id: str, *, held: frozenset[str] = frozenset()) -> bool:
        """Delete a clip; False if there was none. :class:`ClipHeld` if it is held."""
        video = self._path(clip_id, VIDEO_SUFFIX)
        sidecar = self._path(clip_id, SIDECAR_SUFFIX)
        if clip_id in held:
            raise ClipHeld(f"clip {clip_id} is held by an open sharing request")
        with self._lock:
            existed = self._index.pop(clip_id, None) is not None
        # Video first: a crash in between leaves a sidecar alone, which rescan() drops.
        video.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        return existed

    def apply_retention(
        self,
        max_age: timedelta | None,
        max_bytes: int | None,
        held: frozenset[str],
        *,
        now: datetime | None = None,
    ) -> list[ClipRecord]:
        """Delete clips older than ``max_age`` and the oldest while over ``max_bytes``,
        never one in ``held``; returns what was deleted."""
        doomed = plan_retention(
            self.list_clips(),
            now=now or datetime.now(UTC),
            max_age=max_age,
            max_bytes=max_bytes,
            held=held,
        )
        for record in doomed:
            self.delete(record.id, held=held)
        if doomed:
            _LOGGER.debug("retention deleted %d clip(s)", len(doomed))
        return doomed

    # --- start-up ---------------------------------------------------------------------

    def rescan(self) -> None:
        """Rebuild the index from the directory, removing leftovers of interrupted writes."""
        index: dict[str, ClipRecord] = {}
        with os.scandir(self._root) as entries:
            names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
        present = set(names)
        for name in names:
            if name.endswith(TEMP_SUFFIX):
                (self._root / name).unlink(missing_ok=True)
                continue
            stem, _, suffix = name.partition(".")
            if not is_valid_id(stem):
                continue  # not ours: leave it alone
            if f".{suffix}" == SIDECAR_SUFFIX:
                record = self._load(stem, present)
                if record is not None:
                    index[stem] = record
            elif f".{suffix}" == VIDEO_SUFFIX and f"{stem}{SIDECAR_SUFFIX}" not in present:
                _LOGGER.warning("clip %s has no metadata and is not listed", stem)
        with self._lock:
            self._index = index

    def _load(self, clip_id: str, present: set[str]) -> ClipRecord | None:
        sidecar = self._root / f"{clip_id}{SIDECAR_SUFFIX}"
        if f"{clip_id}{VIDEO_SUFFIX}" not in present:
            # The commit stopped between its two renames: the video never made it.
            sidecar.unlink(missing_ok=True)
            return None
        try:
            record = ClipRecord.from_json(json.loads(sidecar.read_bytes()))
            if record.id != clip_id:
                raise ValueError("sidecar names another clip")
            size = (self._root / f"{clip_id}{VIDEO_SUFFIX}").stat().st_size
        except (OSError, ValueError) as err:
            _LOGGER.warning("clip %s is not listed: unreadable metadata (%s)", clip_id, err)
            return None
        if size != record.size:
            # The file is the truth for retention's byte count.
            record = replace(record, size=size)
        return record

    def _path(self, clip_id: str, suffix: str) -> Path:
        try:
            return child_path(self._root, clip_id, suffix)
        except InvalidId as err:
            raise InvalidClipId("not a clip id") from err


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("time is not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("time has no time zone")
    return parsed
