"""Shared helpers for the sharing tests: a settable clock, a directory-backed clip source
and a gate factory. (Named test_sharing_* to stay inside the sharing tests' area; it
holds no tests itself.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from custom_components.doorstep.sharing import (
    AuditLog,
    ClipInfo,
    EgressGate,
    HubKey,
    RequesterKind,
    RequestFields,
    SharingState,
    child_path,
    new_id,
    validate_request,
)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class DirClipSource:
    """Clips as files under ``root``, found through an in-memory index (like the recorder)."""

    root: Path
    index: dict[str, ClipInfo] = field(default_factory=dict)

    def add(self, data: bytes, start: datetime, doorbell_id: str = "front") -> ClipInfo:
        clip_id = new_id(start)
        child_path(self.root, clip_id).write_bytes(data)
        info = ClipInfo(clip_id, doorbell_id, start, start + timedelta(seconds=20), len(data))
        self.index[clip_id] = info
        return info

    def clips_in_window(
        self, start: datetime, end: datetime, doorbell_ids: tuple[str, ...] | None
    ) -> list[ClipInfo]:
        return [
            info
            for info in self.index.values()
            if info.start < end
            and info.end > start
            and (doorbell_ids is None or info.doorbell_id in doorbell_ids)
        ]

    def open_clip(self, clip_id: str) -> BinaryIO:
        return child_path(self.root, clip_id).open("rb")


def request_body(now: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": "CASE-2025-0042",
        "reason": "Parcel theft reported at number 12",
        "window": {
            "start": (now - timedelta(hours=2)).isoformat(),
            "end": (now - timedelta(hours=1)).isoformat(),
        },
        "contact": "desk@police.example",
        "wanted_by": (now + timedelta(days=7)).isoformat(),
        "delivery": {"method": "pickup"},
    }
    body.update(overrides)
    return body


def request_fields(now: datetime, **overrides: Any) -> RequestFields:
    return validate_request(request_body(now, **overrides), now=now)


@dataclass
class Hub:
    """A gate with everything it needs, in a temporary directory."""

    root: Path
    clock: FakeClock
    clips: DirClipSource
    key: HubKey
    audit: AuditLog
    gate: EgressGate
    requester_id: str
    requester_token: str

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.jsonl"


def make_hub(root: Path, *, clip_count: int = 2, state: SharingState | None = None) -> Hub:
    clock = FakeClock()
    clips_dir = root / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    clips = DirClipSource(clips_dir)
    for n in range(clip_count):
        clips.add(
            bytes([n + 1]) * (1000 + 700 * n),
            START - timedelta(minutes=90) + timedelta(minutes=n),
        )
    key = HubKey.generate()
    audit = AuditLog.open_blocking(root / "audit.jsonl", clock=clock)
    gate = EgressGate(clips=clips, audit=audit, key=key, clock=clock, state=state)
    requester, token = gate.create_requester("County police", RequesterKind.POLICE)
    return Hub(root, clock, clips, key, audit, gate, requester.id, token)
