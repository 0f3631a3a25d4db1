"""Ids and tokens from outside: strict shapes, constant-time compares, and no file opened
outside the clips directory whatever a hostile id or token looks like."""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
import hmac
import io
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.doorstep.sharing import (
    Actor,
    InvalidId,
    InvalidToken,
    SharingError,
    check_id,
    child_path,
    hash_token,
    is_valid_id,
    new_id,
    new_requester_token,
    tokens as tokens_module,
)
from tests.approval import approve_seen

from .test_sharing_fixtures import START, Hub, make_hub

HOSTILE = [
    "",
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f",
    "..\\..\\windows\\system32",
    "C:\\Windows\\win.ini",
    "/etc/passwd",
    "01JNQ7Z0000000000000000000\x00.mp4",
    "01JNQ7Z0000000000000000000\n",
    "01jnq7z0000000000000000000",  # lower case: not the canonical spelling
    "01JNQ7Z000000000000000000O",  # O is not in the alphabet
    "01JNQ7Z00000000000000000\uff10",  # fullwidth zero
    "01JNQ7Z0000000000000000\u2024\u2024/",  # one-dot leaders
    "\u2215etc\u2215passwd",  # division slash
    "\uff181JNQ7Z0000000000000000000",  # fullwidth eight
    "91JNQ7Z0000000000000000000",  # overflows 128 bits
    "01JNQ7Z0000000000000000000/..",
]


def test_new_ids_are_valid_and_sortable() -> None:
    ids = [new_id(START) for _ in range(100)]
    assert all(is_valid_id(i) for i in ids)
    assert len(set(ids)) == 100
    assert new_id(START)[:10] < new_id(START.replace(year=2026))[:10]


@pytest.mark.parametrize("value", [*HOSTILE, None, 42, b"01JNQ7Z0000000000000000000"])
def test_hostile_ids(value: Any) -> None:
    assert not is_valid_id(value)
    with pytest.raises(InvalidId):
        check_id(value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_ids_never_escape(value: str) -> None:
    if is_valid_id(value):
        assert value.isascii()
        assert value.isalnum()
        assert len(value) == 26


def test_child_path(tmp_path: Path) -> None:
    clip_id = new_id(START)
    assert child_path(tmp_path, clip_id) == tmp_path.resolve() / f"{clip_id}.mp4"
    for value in HOSTILE:
        with pytest.raises(InvalidId):
            child_path(tmp_path, value)


def test_child_path_refuses_symlinked_escape(tmp_path: Path) -> None:
    clip_id = new_id(START)
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"secret")
    root = tmp_path / "clips"
    root.mkdir()
    (root / f"{clip_id}.mp4").symlink_to(outside)
    with pytest.raises(InvalidId):
        child_path(root, clip_id)


def test_requester_token_round_trip() -> None:
    token, stored = new_requester_token()
    assert len(token) == 43
    assert stored == hash_token(token) != token
    assert tokens_module.is_well_formed_token(token)
    assert hash_token(token[:-1] + ("A" if token[-1] != "A" else "B")) != stored
    assert not tokens_module.is_well_formed_token(token + "\x00")
    assert not tokens_module.is_well_formed_token("")


def test_token_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    # Every candidate is compared, even after a match.
    found = tokens_module.find_by_secret("b", [("a", 1), ("b", 2), ("c", 3)])
    assert found == 2
    assert len(calls) == 3


@pytest.fixture
def opened_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path opened through open(), io.open() (pathlib) or os.open() during the test."""
    paths: list[str] = []
    real_open, real_os_open = io.open, os.open

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        paths.append(os.fspath(file) if not isinstance(file, int) else f"fd:{file}")
        return real_open(file, *args, **kwargs)

    def spy_os_open(path: Any, *args: Any, **kwargs: Any) -> int:
        paths.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return paths


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=60),
    st.text(alphabet="./\\%2eEfF0\x00:~", max_size=30),
    st.builds(lambda a, b: f"{a}/{b}", st.text(max_size=10), st.text(max_size=10)),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=hostile_text)
async def test_fuzz_gate_never_opens_outside_clips(
    hub: Hub, opened_paths: list[str], value: str
) -> None:
    admin = Actor("admin", is_admin=True, verified_by="password")
    allowed = {str(hub.clips.root.resolve()), str(hub.audit_path)}
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: hub.gate.open_pickup(value),
        lambda: hub.gate.open_release(value),
        lambda: approve_seen(hub.gate, value, admin),
        lambda: hub.gate.decline(value, admin),
        lambda: hub.gate.revoke(value, admin),
    ]
    for attempt in attempts:
        with pytest.raises(SharingError):
            await attempt()
    with pytest.raises(SharingError):
        hub.gate.requester_view(hub.requester_id, value)
    with pytest.raises(InvalidToken):
        hub.gate.authenticate(value)
    outside = [
        p for p in opened_paths if not any(p == a or p.startswith(a + os.sep) for a in allowed)
    ]
    assert outside == []


async def test_spy_sees_legitimate_clip_reads(hub: Hub, opened_paths: list[str]) -> None:
    """Control for the fuzz test above: a real release does show up in the spy."""
    from .test_sharing_fixtures import request_fields

    admin = Actor("admin", is_admin=True, verified_by="password")
    request = await hub.gate.file_request(hub.requester_id, request_fields(hub.clock.now))
    approved = await approve_seen(hub.gate, request.id, admin)
    assert approved.pickup is not None
    async for _ in await hub.gate.open_pickup(hub.gate.pickup_token(approved.id) or ""):
        pass
    clip_root = str(hub.clips.root.resolve())
    assert sum(p.startswith(clip_root) for p in opened_paths) >= 2 * len(hub.clips.index)
