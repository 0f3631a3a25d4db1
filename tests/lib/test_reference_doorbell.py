"""The reference doorbell's HTTPS API and event socket, over real TLS on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reference_doorbell.doorbell import Doorbell, DoorbellConfig

HEARTBEAT = 0.2


def make_config(state_dir: Path, **overrides: Any) -> DoorbellConfig:
    values: dict[str, Any] = {
        "name": "Front door",
        "state_dir": state_dir,
        "host": "127.0.0.1",
        "port": 0,
        "advertise": False,
        "mdns_interfaces": None,
        "heartbeat_interval": HEARTBEAT,
        "lockout_attempts": 5,
        "lockout_seconds": 60.0,
        "http_button": True,
        "code_length": 6,
    }
    values.update(overrides)
    return DoorbellConfig(**values)


@pytest.fixture
async def bell(tmp_path: Path) -> AsyncIterator[Doorbell]:
    doorbell = Doorbell(make_config(tmp_path / "state"))
    await doorbell.start()
    yield doorbell
    await doorbell.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def pinned(bell: Doorbell) -> aiohttp.Fingerprint:
    """Trust exactly the doorbell's certificate, as a paired hub does."""
    return aiohttp.Fingerprint(bytes.fromhex(bell.fingerprint))


def url(bell: Doorbell, path: str) -> str:
    return f"https://127.0.0.1:{bell.port}{path}"


async def pair(bell: Doorbell, session: aiohttp.ClientSession, client: str = "Hub") -> str:
    async with session.post(
        url(bell, "/v1/pair"), json={"code": bell.pairing_code, "client": client}, ssl=pinned(bell)
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["id"] == bell.device_id
    token: str = body["token"]
    return token


async def post_code(
    bell: Doorbell, session: aiohttp.ClientSession, code: str
) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with session.post(url(bell, "/v1/pair"), json={"code": code}, ssl=pinned(bell)) as resp:
        return resp.status, await resp.json(), resp


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


async def test_info_needs_no_token(bell: Doorbell, session: aiohttp.ClientSession) -> None:
    async with session.get(url(bell, "/v1/info"), ssl=pinned(bell)) as resp:
        assert resp.status == 200
        info = await resp.json()
    assert info == {
        "id": bell.device_id,
        "name": "Front door",
        "model": "Doorstep Reference Doorbell",
        "fw": bell.config.firmware,
        "v": 1,
    }


async def test_identity_satisfies_protocol_rules(bell: Doorbell) -> None:
    assert bell.port > 0
    assert len(bell.fingerprint) == 64
    assert bell.fingerprint == bell.fingerprint.lower()
    assert bell.device_id.startswith("db-")
    assert len(bell.pairing_code) == 6
    assert bell.pairing_code.isdigit()
    txt = bell.txt_record()
    assert set(txt) == {"id", "v", "model", "fw", "fp"}
    assert txt["fp"] == bell.fingerprint


async def test_pairing_issues_token_and_rotates_code(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    seen: list[str] = []
    bell.add_code_listener(seen.append)
    first_code = bell.pairing_code
    token = await pair(bell, session)
    assert bell.pairing_code != first_code
    assert seen == [bell.pairing_code]
    # The used-up code no longer works.
    status, body, _ = await post_code(bell, session, first_code)
    assert (status, body["error"]) == (401, "invalid_code")
    # Only the hash is stored.
    state = (bell.state_dir / "state.json").read_text()
    assert token not in state
    assert len(json.loads(state)["tokens"]) == 1


async def test_wrong_code_counts_down(bell: Doorbell, session: aiohttp.ClientSession) -> None:
    status, body, _ = await post_code(bell, session, wrong(bell.pairing_code))
    assert status == 401
    assert body["error"] == "invalid_code"
    assert body["attempts_left"] == 4
    assert "message" in body
    status, body, _ = await post_code(bell, session, wrong(bell.pairing_code))
    assert body["attempts_left"] == 3
    # A right code resets the count.
    await pair(bell, session)
    status, body, _ = await post_code(bell, session, wrong(bell.pairing_code))
    assert body["attempts_left"] == 4


async def test_lockout_refuses_even_right_code(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    bell = Doorbell(make_config(tmp_path, lockout_attempts=5, lockout_seconds=0.4))
    await bell.start()
    try:
        for left in (4, 3, 2, 1, 0):
            status, body, _ = await post_code(bell, session, wrong(bell.pairing_code))
            assert (status, body["attempts_left"]) == (401, left)
        status, body, resp = await post_code(bell, session, bell.pairing_code)
        assert status == 429
        assert body["error"] == "locked"
        assert body["retry_after"] == 1
        assert resp.headers["Retry-After"] == "1"
        await asyncio.sleep(0.45)
        token = await pair(bell, session)
        assert token
    finally:
        await bell.stop()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"code": 123456}',
        b'{"code": "12345"}',
        b'{"code": "123456789"}',
        b'{"code": "12a456"}',
        b'{"code": "\\u0661\\u0662\\u0663\\u0664\\u0665\\u0666"}',
        b'{"code": "123456", "client": 7}',
        json.dumps({"code": "123456", "client": "x" * 2000}).encode(),
    ],
)
async def test_bad_pair_bodies_get_400(
    bell: Doorbell, session: aiohttp.ClientSession, body: bytes
) -> None:
    async with session.post(
        url(bell, "/v1/pair"),
        data=body,
        headers={"Content-Type": "application/json"},
        ssl=pinned(bell),
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"
    # Malformed requests are not attempts.
    _status, body_json, _ = await post_code(bell, session, wrong(bell.pairing_code))
    assert body_json["attempts_left"] == 4


async def test_oversized_chunked_body_gets_400(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 512

    async with session.post(url(bell, "/v1/pair"), data=chunks(), ssl=pinned(bell)) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/events"),
        ("GET", "/v1/snapshot.jpg"),
        ("GET", "/v1/stream.ts"),
        ("DELETE", "/v1/pair"),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic abc", "Bearer "])
async def test_protected_endpoints_need_a_valid_token(
    bell: Doorbell, session: aiohttp.ClientSession, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    async with session.request(method, url(bell, path), headers=headers, ssl=pinned(bell)) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "unauthorized"
    assert not bell.video.encoding


async def test_unpair_forgets_only_the_caller(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    first = await pair(bell, session, "Hub A")
    second = await pair(bell, session, "Hub B")
    async with session.delete(
        url(bell, "/v1/pair"), headers={"Authorization": f"Bearer {first}"}, ssl=pinned(bell)
    ) as resp:
        assert resp.status == 204
    for token, status in ((first, 401), (second, 200)):
        async with session.get(
            url(bell, "/v1/snapshot.jpg"),
            headers={"Authorization": f"Bearer {token}"},
            ssl=pinned(bell),
        ) as resp:
            assert resp.status == status


async def test_unknown_path_and_method_are_json_errors(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    async with session.get(url(bell, "/v1/nope"), ssl=pinned(bell)) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"] == "not_found"
    async with session.put(url(bell, "/v1/pair"), ssl=pinned(bell)) as resp:
        assert resp.status == 405
        assert (await resp.json())["error"] == "method_not_allowed"


async def _next_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=2.0)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    frame: dict[str, Any] = json.loads(msg.data)
    return frame


async def _connect_events(
    bell: Doorbell, session: aiohttp.ClientSession, token: str
) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(
        url(bell, "/v1/events"),
        headers={"Authorization": f"Bearer {token}"},
        ssl=pinned(bell),
        autoping=False,
    )


async def test_events_hello_ring_motion_heartbeat(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(bell, session)
    await bell.set_motion(True)
    async with await _connect_events(bell, session, token) as ws:
        hello = await _next_frame(ws)
        assert hello == {
            "type": "hello",
            "id": bell.device_id,
            "motion": True,
            "heartbeat_interval": HEARTBEAT,
        }
        await bell.ring()
        await bell.set_motion(False)
        await bell.set_motion(False)  # no change, no event
        frames = [await _next_frame(ws) for _ in range(3)]
        assert [f["type"] for f in frames] == ["ring", "motion_stop", "heartbeat"]
        assert [f["seq"] for f in frames] == [1, 2, 3]
        assert all(isinstance(f["ts"], float) for f in frames)
        assert frames[0]["ts"] <= frames[1]["ts"] <= frames[2]["ts"]
        # The button endpoints feed the same socket.
        async with session.post(url(bell, "/v1/button/ring"), ssl=pinned(bell)) as resp:
            assert resp.status == 200
        async with session.post(
            url(bell, "/v1/button/motion"), json={"active": True}, ssl=pinned(bell)
        ) as resp:
            assert resp.status == 200
        kinds = [await _next_frame(ws) for _ in range(2)]
        assert [(f["type"], f["seq"]) for f in kinds] == [("ring", 4), ("motion_start", 5)]


async def test_button_motion_needs_a_boolean(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    async with session.post(
        url(bell, "/v1/button/motion"), json={"active": "yes"}, ssl=pinned(bell)
    ) as resp:
        assert resp.status == 400
    assert not bell.motion


async def test_no_http_button(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    bell = Doorbell(make_config(tmp_path, http_button=False))
    await bell.start()
    try:
        async with session.post(url(bell, "/v1/button/ring"), ssl=pinned(bell)) as resp:
            assert resp.status == 404
    finally:
        await bell.stop()


async def test_suspend_silences_everything_until_resumed(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(bell, session)
    async with await _connect_events(bell, session, token) as ws:
        assert (await _next_frame(ws))["type"] == "hello"
        bell.suspend_events()
        await bell.ring()
        await ws.ping()
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=HEARTBEAT * 3)
        assert not ws.closed
        bell.resume_events()
        frame = await _next_frame(ws)
        assert frame["type"] == "heartbeat"
        assert frame["seq"] == 1


async def test_suspended_before_connect_sends_no_hello(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(bell, session)
    bell.suspend_events()
    async with await _connect_events(bell, session, token) as ws:
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=HEARTBEAT * 2)
        bell.resume_events()
        assert (await _next_frame(ws))["type"] == "hello"


async def test_answers_pings_when_awake(bell: Doorbell, session: aiohttp.ClientSession) -> None:
    token = await pair(bell, session)
    async with await _connect_events(bell, session, token) as ws:
        assert (await _next_frame(ws))["type"] == "hello"
        await ws.ping(b"x")
        msg = await ws.receive(timeout=HEARTBEAT / 2)
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.PONG, b"x")


async def test_drop_connections_cuts_sockets(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(bell, session)
    ws = await _connect_events(bell, session, token)
    assert (await _next_frame(ws))["type"] == "hello"
    await bell.drop_connections()
    msg = await ws.receive(timeout=2)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    await ws.close()
    assert bell.events.session_count == 0
    # The doorbell still accepts new connections.
    async with await _connect_events(bell, session, token) as again:
        assert (await _next_frame(again))["type"] == "hello"


async def test_revoke_all_tokens(bell: Doorbell, session: aiohttp.ClientSession) -> None:
    token = await pair(bell, session)
    ws = await _connect_events(bell, session, token)
    assert (await _next_frame(ws))["type"] == "hello"
    bell.revoke_all_tokens()
    msg = await ws.receive(timeout=2)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    await ws.close()
    async with session.get(
        url(bell, "/v1/events"), headers={"Authorization": f"Bearer {token}"}, ssl=pinned(bell)
    ) as resp:
        assert resp.status == 401


async def test_state_persists_across_restart(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    first = Doorbell(make_config(tmp_path))
    await first.start()
    token = await pair(first, session)
    identity = (first.device_id, first.fingerprint, first.pairing_code)
    await first.stop()

    second = Doorbell(make_config(tmp_path))
    await second.start()
    try:
        assert (second.device_id, second.fingerprint, second.pairing_code) == identity
        async with session.get(
            url(second, "/v1/snapshot.jpg"),
            headers={"Authorization": f"Bearer {token}"},
            ssl=pinned(second),
        ) as resp:
            assert resp.status == 200
    finally:
        await second.stop()


async def test_factory_reset_new_cert_same_id_and_port(
    bell: Doorbell, session: aiohttp.ClientSession
) -> None:
    token = await pair(bell, session)
    before = (bell.device_id, bell.fingerprint, bell.port)
    old_pin = pinned(bell)
    await bell.factory_reset()
    assert bell.device_id == before[0]
    assert bell.fingerprint != before[1]
    assert bell.port == before[2]
    # A hub pinning the old certificate refuses the doorbell now.
    with pytest.raises(aiohttp.ServerFingerprintMismatch):
        async with session.get(url(bell, "/v1/info"), ssl=old_pin):
            pass
    async with session.get(
        url(bell, "/v1/snapshot.jpg"),
        headers={"Authorization": f"Bearer {token}"},
        ssl=pinned(bell),
    ) as resp:
        assert resp.status == 401
    assert await pair(bell, session)


def test_cli_factory_reset_keeps_id(tmp_path: Path) -> None:
    bell = Doorbell(make_config(tmp_path))
    bell.reset_before_start()
    first_id, first_fp = bell.device_id, bell.fingerprint
    again = Doorbell(make_config(tmp_path))
    again.reset_before_start()
    assert again.device_id == first_id
    assert again.fingerprint != first_fp


async def test_code_length_is_configurable(tmp_path: Path) -> None:
    bell = Doorbell(make_config(tmp_path, code_length=8))
    await bell.start()
    try:
        assert len(bell.pairing_code) == 8
    finally:
        await bell.stop()
    with pytest.raises(ValueError, match="code_length"):
        make_config(tmp_path, code_length=5)


def test_name_limit() -> None:
    with pytest.raises(ValueError, match="63 bytes"):
        make_config(Path("/nonexistent"), name="é" * 32)
