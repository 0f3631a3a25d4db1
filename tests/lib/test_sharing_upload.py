"""HTTPS upload delivery against a real TLS server on 127.0.0.1, with a test CA."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
import json
from pathlib import Path

import aiohttp
from aiohttp import web
import pytest

from custom_components.doorstep.sharing import (
    Actor,
    InvalidTrustFile,
    RequestState,
    RetryPolicy,
    Uploader,
    UploadStatus,
    trusted_context,
)
from reference_doorbell.certs import CertFiles
from reference_doorbell.release_check import verify_archive
from scripts.lab.certs import TestCa
from tests.approval import approve_seen

from .test_sharing_fixtures import START, Hub, make_hub, request_fields

ADMIN = Actor("admin-1", is_admin=True, verified_by="password")

type Handler = Callable[[web.Request, "Requester"], Awaitable[web.StreamResponse]]


@dataclass
class Requester:
    """A requester's upload endpoint: records every attempt's body and answers by script."""

    answers: list[Handler]
    bodies: list[bytes] = field(default_factory=list)
    hits: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        answer = self.answers[min(self.hits, len(self.answers) - 1)]
        self.hits += 1
        return await answer(request, self)


async def accept(request: web.Request, requester: Requester) -> web.StreamResponse:
    requester.bodies.append(await request.read())
    return web.json_response({"verified": True})


def refuse(status: int, **headers: str) -> Handler:
    async def answer(request: web.Request, requester: Requester) -> web.StreamResponse:
        requester.bodies.append(await request.read())
        return web.json_response({"error": "no"}, status=status, headers=headers)

    return answer


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def server_cert(ca: TestCa, tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return ca.issue(tmp_path_factory.mktemp("leaf"), ["127.0.0.1"])


@pytest.fixture
async def serve(
    server_cert: CertFiles,
) -> AsyncIterator[Callable[..., Awaitable[Requester]]]:
    runners: list[web.AppRunner] = []

    async def start(*answers: Handler, cert: CertFiles | None = None) -> Requester:
        requester = Requester(list(answers))
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/evidence", requester.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        context = (cert or server_cert).server_context()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        requester.url = f"https://127.0.0.1:{port}/evidence"
        return requester

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)


@dataclass
class Sleeps:
    """An injected sleep: records each wait and returns at once (optionally acting)."""

    waits: list[float] = field(default_factory=list)
    during: Callable[[], None] | None = None

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.during is not None:
            self.during()


async def approved_upload(hub: Hub, url: str) -> str:
    request = await hub.gate.file_request(
        hub.requester_id,
        request_fields(hub.clock.now, delivery={"method": "upload", "url": url}),
    )
    await approve_seen(hub.gate, request.id, ADMIN)
    return request.id


def upload_entries(hub: Hub) -> list[dict[str, object]]:
    return [
        entry["details"]
        for entry in hub.audit.entries_blocking()
        if entry["kind"] == "delivered" and entry["details"].get("via") == "upload"
    ]


def uploader(
    hub: Hub,
    session: aiohttp.ClientSession,
    ca: TestCa,
    sleeps: Sleeps | None = None,
    *,
    max_attempts: int = 5,
) -> Uploader:
    return Uploader(
        hub.gate,
        session,
        trusted_context(ca.cert_path),
        policy=RetryPolicy(first_delay=10, max_delay=100, max_attempts=max_attempts),
        sleep=sleeps or Sleeps(),
        jitter=lambda: 0.5,
    )


async def test_upload_delivers_the_signed_archive(
    hub: Hub, serve: Callable[..., Awaitable[Requester]], session: aiohttp.ClientSession, ca: TestCa
) -> None:
    requester = await serve(accept)
    request_id = await approved_upload(hub, requester.url)

    result = await uploader(hub, session, ca).deliver(request_id)

    assert result.status is UploadStatus.DELIVERED
    assert result.attempts == 1
    [body] = requester.bodies
    assert result.bytes_sent == len(body)
    manifest = verify_archive(body, hub.key.public_bytes())  # signature and every hash
    frozen = hub.gate.get(request_id).frozen_clips
    assert manifest["request_id"] == request_id
    assert [(c["id"], c["sha256"]) for c in manifest["clips"]] == [(c.id, c.sha256) for c in frozen]
    for clip in frozen:
        assert hub.clips.open_clip(clip.id).read() in body
    assert hub.gate.get(request_id).state is RequestState.FULFILLED
    assert [(e["phase"]) for e in upload_entries(hub)] == ["started", "done"]


async def test_503_is_retried_after_backoff(
    hub: Hub, serve: Callable[..., Awaitable[Requester]], session: aiohttp.ClientSession, ca: TestCa
) -> None:
    requester = await serve(refuse(503), accept)
    request_id = await approved_upload(hub, requester.url)
    sleeps = Sleeps()

    result = await uploader(hub, session, ca, sleeps).deliver(request_id)

    assert result.status is UploadStatus.DELIVERED
    assert result.attempts == 2
    # first_delay 10 s, half fixed and half jittered (jitter pinned at 0.5).
    assert sleeps.waits == [7.5]
    assert requester.bodies[0] == requester.bodies[1]
    phases = [(e["phase"], e.get("status"), e.get("final")) for e in upload_entries(hub)]
    assert phases == [
        ("started", None, None),
        ("failed", 503, False),
        ("started", None, None),
        ("done", None, None),
    ]
    assert await hub.audit.verify() is None


async def test_backoff_grows_honours_retry_after_and_stops_at_the_cap(
    hub: Hub, serve: Callable[..., Awaitable[Requester]], session: aiohttp.ClientSession, ca: TestCa
) -> None:
    requester = await serve(refuse(429, **{"Retry-After": "40"}), refuse(502))
    request_id = await approved_upload(hub, requester.url)
    sleeps = Sleeps()

    result = await uploader(hub, session, ca, sleeps, max_attempts=4).deliver(request_id)

    assert result.status is UploadStatus.FAILED
    assert result.attempts == 4
    assert result.http_status == 502
    # 429 asked for 40 s (more than the 7.5 s backoff); then 15 s, 30 s.
    assert sleeps.waits == [40.0, 15.0, 30.0]
    assert upload_entries(hub)[-1]["final"] is True
    assert hub.gate.get(request_id).state is RequestState.APPROVED


async def test_422_is_final(
    hub: Hub, serve: Callable[..., Awaitable[Requester]], session: aiohttp.ClientSession, ca: TestCa
) -> None:
    requester = await serve(refuse(422), accept)
    request_id = await approved_upload(hub, requester.url)
    sleeps = Sleeps()

    result = await uploader(hub, session, ca, sleeps).deliver(request_id)

    assert result.status is UploadStatus.FAILED
    assert result.http_status == 422
    assert requester.hits == 1
    assert sleeps.waits == []
    assert hub.gate.get(request_id).state is RequestState.APPROVED
    assert upload_entries(hub)[-1] == {
        "via": "upload",
        "phase": "failed",
        "attempt": 1,
        "error": "the requester answered HTTP 422",
        "status": 422,
        "final": True,
    }


async def test_untrusted_certificate_sends_nothing(
    hub: Hub,
    serve: Callable[..., Awaitable[Requester]],
    session: aiohttp.ClientSession,
    ca: TestCa,
    tmp_path: Path,
) -> None:
    stranger = TestCa.create(tmp_path / "stranger", "Someone else's CA")
    requester = await serve(accept, cert=stranger.issue(tmp_path / "stranger", ["127.0.0.1"]))
    request_id = await approved_upload(hub, requester.url)
    sleeps = Sleeps()

    result = await uploader(hub, session, ca, sleeps).deliver(request_id)

    assert result.status is UploadStatus.FAILED
    assert result.bytes_sent == 0
    assert requester.hits == 0
    assert "not trusted" in (result.error or "")
    assert "trusted_requesters.pem" in (result.error or "")
    assert sleeps.waits == []
    assert [e["phase"] for e in upload_entries(hub)] == ["started", "failed"]


async def test_redirect_is_not_followed(
    hub: Hub, serve: Callable[..., Awaitable[Requester]], session: aiohttp.ClientSession, ca: TestCa
) -> None:
    elsewhere = await serve(accept)

    async def redirect(request: web.Request, requester: Requester) -> web.StreamResponse:
        await request.read()
        raise web.HTTPTemporaryRedirect(elsewhere.url)

    requester = await serve(redirect)
    request_id = await approved_upload(hub, requester.url)

    result = await uploader(hub, session, ca).deliver(request_id)

    assert result.status is UploadStatus.FAILED
    assert result.http_status == 307
    assert "redirect" in (result.error or "")
    assert elsewhere.hits == 0
    assert requester.hits == 1


async def test_revoking_mid_upload_stops_the_stream(
    tmp_path: Path,
    serve: Callable[..., Awaitable[Requester]],
    session: aiohttp.ClientSession,
    ca: TestCa,
) -> None:
    hub = make_hub(tmp_path, clip_count=0)
    # Big enough (24 MB) that loopback socket buffers cannot swallow the whole archive
    # while the requester holds off reading.
    for n in range(3):
        hub.clips.add(bytes([n + 1]) * (8 * 1024**2), START - timedelta(minutes=90 - n))
    first_bytes = asyncio.Event()
    revoked = asyncio.Event()
    got: list[int] = []

    async def slow_reader(request: web.Request, requester: Requester) -> web.StreamResponse:
        try:
            got.append(len(await request.content.readexactly(64 * 1024)))
            first_bytes.set()
            await revoked.wait()
            async for chunk in request.content.iter_any():
                got.append(len(chunk))
        except ConnectionError, asyncio.IncompleteReadError, aiohttp.ClientPayloadError:
            pass
        return web.Response(status=400)

    requester = await serve(slow_reader)
    request_id = await approved_upload(hub, requester.url)
    sleeps = Sleeps()
    delivery = asyncio.create_task(uploader(hub, session, ca, sleeps).deliver(request_id))
    await first_bytes.wait()
    await hub.gate.revoke(request_id, ADMIN)
    revoked.set()

    result = await delivery

    assert result.status is UploadStatus.STOPPED
    assert result.attempts == 1
    assert sleeps.waits == []
    total = sum(clip.size for clip in hub.gate.get(request_id).frozen_clips)
    assert 0 < result.bytes_sent < total
    assert sum(got) < total
    assert hub.gate.get(request_id).state is RequestState.REVOKED


async def test_request_expiring_during_backoff_stops_retrying(
    hub: Hub, serve: Callable[..., Awaitable[Requester]], session: aiohttp.ClientSession, ca: TestCa
) -> None:
    requester = await serve(refuse(503))
    request_id = await approved_upload(hub, requester.url)
    sleeps = Sleeps(during=lambda: hub.clock.advance(timedelta(days=8)))

    result = await uploader(hub, session, ca, sleeps).deliver(request_id)

    assert result.status is UploadStatus.STOPPED
    assert requester.hits == 1
    assert len(sleeps.waits) == 1


async def test_connection_refused_is_retried(
    hub: Hub, serve: Callable[..., Awaitable[Requester]], session: aiohttp.ClientSession, ca: TestCa
) -> None:
    requester = await serve(accept)
    live_url = requester.url
    # Nobody listens on port 1 of loopback: the first attempt is refused.
    request_id = await approved_upload(hub, "https://127.0.0.1:1/evidence")
    request = hub.gate.get(request_id)

    def move_server() -> None:
        # The requester's server comes back on another port (a stand-in for "comes back").
        hub.gate.state.requests[request_id] = replace(
            request, delivery=replace(request.delivery, upload_url=live_url)
        )

    sleeps = Sleeps(during=move_server)
    result = await uploader(hub, session, ca, sleeps).deliver(request_id)

    assert result.status is UploadStatus.DELIVERED
    assert result.attempts == 2
    failed = [e for e in upload_entries(hub) if e["phase"] == "failed"]
    assert len(failed) == 1
    assert "status" not in failed[0]
    assert failed[0]["final"] is False


def test_trust_file(tmp_path: Path, ca: TestCa) -> None:
    trusted_context(tmp_path / "absent.pem")  # nothing extra to trust: fine
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidTrustFile, match=r"broken\.pem"):
        trusted_context(broken)
    context = trusted_context(ca.cert_path)
    subjects = [json.dumps(cert["subject"]) for cert in context.get_ca_certs()]
    assert any("Doorstep lab CA" in subject for subject in subjects)


def test_retry_policy_caps_the_delay() -> None:
    policy = RetryPolicy(first_delay=10, max_delay=60, max_attempts=9)
    assert [policy.delay(n, 0.0) for n in range(1, 6)] == [5.0, 10.0, 20.0, 30.0, 30.0]
    assert [policy.delay(n, 0.999) for n in (1, 5)] == pytest.approx([9.995, 59.97])
    assert policy.delay(1, 0.0, retry_after=10_000) == 60.0
