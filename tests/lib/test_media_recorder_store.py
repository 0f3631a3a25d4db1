"""The clip store: index rebuilt on restart, the sharing ClipSource contract, retention with
legal holds, and no path outside the clips directory whatever id comes in."""

from __future__ import annotations

import builtins
import contextlib
from datetime import UTC, datetime, timedelta
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.doorstep.media import (
    ClipHeld,
    ClipRecord,
    ClipStore,
    InvalidClipId,
    plan_retention,
)
from custom_components.doorstep.sharing import (
    Actor,
    AuditLog,
    ClipSource,
    EgressGate,
    HubKey,
    RequesterKind,
)
from tests.approval import approve_seen

from .test_sharing_fixtures import FakeClock, request_fields

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def add_clip(
    store: ClipStore,
    start: datetime,
    size: int = 1000,
    doorbell_id: str = "front",
    seconds: float = 20,
) -> ClipRecord:
    """Publish a clip the way the recorder does (the bytes need not be video here)."""
    clip_id = store.new_clip_id(start)
    store.temp_path(clip_id).write_bytes(b"v" * size)
    record = ClipRecord(
        clip_id, doorbell_id, start, start + timedelta(seconds=seconds), size, "ring"
    )
    return store.commit(record)


@pytest.fixture
def store(tmp_path: Path) -> ClipStore:
    return ClipStore(tmp_path / "doorstep" / "clips")


def test_store_is_a_clip_source(store: ClipStore) -> None:
    source: ClipSource = store  # checked by mypy: the gate can use the store as it is
    assert source.clips_in_window(START, START, None) == []


def test_commit_publishes_video_and_sidecar(store: ClipStore) -> None:
    record = add_clip(store, START)
    assert sorted(p.name for p in store.root.iterdir()) == [
        f"{record.id}.json",
        f"{record.id}.mp4",
    ]
    sidecar = json.loads((store.root / f"{record.id}.json").read_text())
    assert sidecar["doorbell_id"] == "front"
    assert sidecar["reason"] == "ring"
    assert sidecar["size"] == 1000
    assert datetime.fromisoformat(sidecar["start"]) == START
    with store.open_clip(record.id) as handle:
        assert handle.read() == b"v" * 1000
    assert store.get(record.id) == record


def test_restart_rebuilds_the_index_and_cleans_up(tmp_path: Path) -> None:
    root = tmp_path / "clips"
    store = ClipStore(root)
    kept = [add_clip(store, START + timedelta(minutes=n), size=100 + n) for n in range(3)]
    # Leftovers of a crash: a half-written video, a torn sidecar temp, and a commit that
    # stopped between its two renames (sidecar in place, video still a temp file).
    (root / f"{store.new_clip_id(START)}.mp4.part").write_bytes(b"half")
    (root / f"{store.new_clip_id(START)}.json.part").write_bytes(b"{")
    interrupted = store.new_clip_id(START)
    (root / f"{interrupted}.json").write_text(
        json.dumps(ClipRecord(interrupted, "front", START, START, 4, "ring").to_json())
    )
    # A video nobody described, a corrupt sidecar, and somebody else's file.
    orphan = store.new_clip_id(START)
    (root / f"{orphan}.mp4").write_bytes(b"x")
    corrupt = store.new_clip_id(START)
    (root / f"{corrupt}.mp4").write_bytes(b"x")
    (root / f"{corrupt}.json").write_text("{not json")
    (root / "notes.txt").write_text("mine")
    # A clip whose file grew after its sidecar was written: the file is the truth.
    with (root / f"{kept[0].id}.mp4").open("ab") as handle:
        handle.write(b"more")

    reopened = ClipStore(root)
    assert [c.id for c in reopened.list_clips()] == [c.id for c in kept]
    assert reopened.get(kept[0].id) is not None
    assert reopened.get(kept[0].id).size == kept[0].size + 4  # type: ignore[union-attr]
    assert reopened.total_bytes() == sum(c.size for c in kept) + 4
    names = {p.name for p in root.iterdir()}
    assert not any(name.endswith(".part") for name in names)
    assert f"{interrupted}.json" not in names
    assert {f"{orphan}.mp4", f"{corrupt}.mp4", "notes.txt"} <= names  # never destroyed
    assert reopened.get(orphan) is None
    assert reopened.get(corrupt) is None


def test_clips_in_window_and_doorbell_filter(store: ClipStore) -> None:
    front = add_clip(store, START, doorbell_id="front")
    back = add_clip(store, START + timedelta(minutes=5), doorbell_id="back")
    window_end = START + timedelta(minutes=10)
    assert [c.id for c in store.clips_in_window(START, window_end, None)] == [front.id, back.id]
    assert [c.id for c in store.clips_in_window(START, window_end, ("back",))] == [back.id]
    assert store.clips_in_window(START, window_end, ("garage",)) == []
    # [start, end): a clip that ends exactly at the window's start is not in it.
    assert store.clips_in_window(front.end, front.end + timedelta(seconds=1), ("front",)) == []
    # The end is exclusive too.
    assert store.clips_in_window(START - timedelta(minutes=1), START, None) == []
    info = store.clips_in_window(START, window_end, ("front",))[0]
    assert (info.doorbell_id, info.start, info.end, info.size) == (
        "front",
        front.start,
        front.end,
        front.size,
    )
    assert [c.id for c in store.known_clips([back.id, "nope", front.id])] == [back.id, front.id]


# --- retention ---------------------------------------------------------------------------


def test_retention_by_age_skips_held_clips(store: ClipStore) -> None:
    old = [add_clip(store, START + timedelta(hours=n)) for n in range(3)]
    recent = add_clip(store, START + timedelta(days=10))
    now = START + timedelta(days=10, hours=1)
    deleted = store.apply_retention(timedelta(days=7), None, frozenset({old[1].id}), now=now)
    assert [c.id for c in deleted] == [old[0].id, old[2].id]
    assert [c.id for c in store.list_clips()] == [old[1].id, recent.id]
    assert not (store.root / f"{old[0].id}.mp4").exists()
    assert not (store.root / f"{old[0].id}.json").exists()
    assert (store.root / f"{old[1].id}.mp4").exists()


def test_retention_by_size_deletes_oldest_first_but_never_held(store: ClipStore) -> None:
    clips = [add_clip(store, START + timedelta(minutes=n), size=1000) for n in range(5)]
    held = frozenset({clips[0].id, clips[2].id})
    deleted = store.apply_retention(None, 2500, held, now=START)
    # Held clips count toward the total but cannot go; the oldest others go first.
    assert [c.id for c in deleted] == [clips[1].id, clips[3].id, clips[4].id]
    assert store.total_bytes() == 2000
    # With everything held, the limit simply cannot be met.
    assert store.apply_retention(None, 0, held, now=START) == []
    assert store.total_bytes() == 2000


def test_plan_retention_rules() -> None:
    a = ClipRecord("0" * 26, "f", START, START + timedelta(seconds=5), 10, "ring")
    b = ClipRecord("1" * 26, "f", START + timedelta(days=1), START + timedelta(days=1), 10, "x")
    now = START + timedelta(days=1)
    # Age counts from a clip's end.
    assert (
        plan_retention([a, b], now=now, max_age=timedelta(days=1), max_bytes=None, held=frozenset())
        == []
    )
    plan = plan_retention(
        [b, a], now=now, max_age=timedelta(hours=1), max_bytes=None, held=frozenset()
    )
    assert plan == [a]
    assert plan_retention([a, b], now=now, max_age=None, max_bytes=10, held=frozenset()) == [a]
    assert plan_retention([a, b], now=now, max_age=None, max_bytes=None, held=frozenset()) == []
    with pytest.raises(ValueError, match="max_bytes"):
        plan_retention([a], now=now, max_age=None, max_bytes=-1, held=frozenset())


def test_delete_refuses_held_clips(store: ClipStore) -> None:
    record = add_clip(store, START)
    with pytest.raises(ClipHeld):
        store.delete(record.id, held=frozenset({record.id}))
    assert store.get(record.id) == record
    assert store.delete(record.id) is True
    assert store.delete(record.id) is False
    with pytest.raises(FileNotFoundError):
        store.open_clip(record.id)


# --- traversal -------------------------------------------------------------------------------

EVIL_IDS = [
    "",
    ".",
    "..",
    "../secret",
    "../../etc/passwd",
    "/etc/passwd",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV/../../secret",
    "..%2F..%2Fsecret",
    "%2e%2e%2fsecret",
    "..%252f..%252fsecret",
    "01ARZ3NDEKTSV4RRFFQ69G5FA\x00",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV\x00../x",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV\n",
    "01arz3ndektsv4rrffq69g5fav",
    "C:\\Windows\\system32",
    "..\\..\\secret",
    "\uff0e\uff0e\uff0fsecret",  # fullwidth ../
    "01ARZ3NDEKTSV4RRFFQ69G5FA\u0412",  # Cyrillic look-alike
    "81ARZ3NDEKTSV4RRFFQ69G5FAV",  # beyond 128 bits
    "~/secret",
]


class OpenSpy:
    """Records every path handed to open() / os.open(), by whatever route."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

        def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(os.fsdecode(file) if not isinstance(file, int) else f"fd:{file}")
            return real_open(file, *args, **kwargs)

        def spy_io_open(file: Any, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(os.fsdecode(file) if not isinstance(file, int) else f"fd:{file}")
            return real_io_open(file, *args, **kwargs)

        def spy_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
            self.paths.append(os.fsdecode(path))
            return real_os_open(path, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(io, "open", spy_io_open)
        monkeypatch.setattr(os, "open", spy_os_open)

    def outside(self, root: Path) -> list[str]:
        return [
            p for p in self.paths if not p.startswith("fd:") and Path(p).resolve().parent != root
        ]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> OpenSpy:
    return OpenSpy(monkeypatch)


@pytest.mark.parametrize("clip_id", EVIL_IDS)
def test_traversal_ids_open_and_delete_nothing(
    tmp_path: Path, store: ClipStore, spy: OpenSpy, clip_id: str
) -> None:
    secret = tmp_path / "doorstep" / "secret"
    secret.write_text("not a clip")
    add_clip(store, START)
    spy.paths.clear()
    with pytest.raises(InvalidClipId):
        store.open_clip(clip_id)
    with pytest.raises(InvalidClipId):
        store.delete(clip_id)
    with pytest.raises(InvalidClipId):
        store.clip_path(clip_id)
    assert store.get(clip_id) is None
    assert spy.paths == []
    assert secret.read_text() == "not a clip"
    assert len(store.list_clips()) == 1


def test_unknown_but_valid_id_opens_nothing(store: ClipStore, spy: OpenSpy) -> None:
    with pytest.raises(FileNotFoundError):
        store.open_clip(store.new_clip_id(START))
    assert spy.paths == []


def test_planted_symlink_is_not_followed(tmp_path: Path, store: ClipStore, spy: OpenSpy) -> None:
    record = add_clip(store, START)
    secret = tmp_path / "secret.mp4"
    secret.write_text("outside")
    video = store.root / f"{record.id}.mp4"
    video.unlink()
    video.symlink_to(secret)
    spy.paths.clear()
    with pytest.raises(InvalidClipId):
        store.open_clip(record.id)
    assert spy.outside(store.root) == []
    assert spy.paths == []


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(clip_id=st.text(max_size=40))
def test_fuzzed_ids_never_reach_outside(store: ClipStore, spy: OpenSpy, clip_id: str) -> None:
    spy.paths.clear()  # hypothesis opens its own files between examples
    with contextlib.suppress(InvalidClipId, FileNotFoundError):
        store.open_clip(clip_id).close()
    assert spy.outside(store.root) == []
    with contextlib.suppress(InvalidClipId):
        store.delete(clip_id)
    assert spy.paths == []


# --- with the sharing gate --------------------------------------------------------------------


async def test_gate_holds_freezes_and_releases_recorded_clips(tmp_path: Path) -> None:
    """The store as the gate's clip source: a pending request holds its clips against
    retention, and approval hashes exactly the bytes the store serves."""
    store = ClipStore(tmp_path / "clips")
    inside = add_clip(store, START, size=3000)
    outside = add_clip(store, START + timedelta(hours=5), size=2000)
    clock = FakeClock(START + timedelta(hours=1, minutes=30))
    key = HubKey.generate()
    audit = AuditLog.open_blocking(tmp_path / "audit.jsonl", clock=clock)
    gate = EgressGate(clips=store, audit=audit, key=key, clock=clock)
    requester, _token = gate.create_requester("County police", RequesterKind.POLICE)
    request = await gate.file_request(requester.id, request_fields(clock.now))
    assert gate.held_clip_ids() == frozenset({inside.id})

    # Retention that would take everything takes only what is not held.
    far_future = START + timedelta(days=400)
    deleted = store.apply_retention(timedelta(days=1), 0, gate.held_clip_ids(), now=far_future)
    assert [c.id for c in deleted] == [outside.id]
    assert [c.id for c in store.list_clips()] == [inside.id]

    approved = await approve_seen(
        gate, request.id, Actor("admin-1", is_admin=True, verified_by="password")
    )
    assert [c.id for c in approved.frozen_clips] == [inside.id]
    with store.open_clip(inside.id) as handle:
        assert approved.frozen_clips[0].sha256 == hashlib.sha256(handle.read()).hexdigest()
