"""The reference requester against the requester contract, served by the real sharing gate.

Every test runs the CLI's own entry point (``run``) in-process, over loopback HTTPS
with a throwaway CA, so the signing, archives and checks are all the real ones.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
import io
import json
from pathlib import Path
import shutil
import subprocess
import sys
import tarfile

import aiohttp
import pytest

from custom_components.doorstep.sharing import Actor, HubKey, RequesterKind, RequestState
from reference_doorbell.certs import CertFiles
from reference_doorbell.requester import (
    EXIT_CLOSED,
    EXIT_HUB_REFUSED,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    EXIT_VERIFY_FAILED,
    run,
)
from tests.approval import approve_seen

from .test_requester_hub import ContractHub, free_port, make_loopback_tls, serve
from .test_sharing_fixtures import START, Hub, make_hub, request_fields

ADMIN = Actor("admin-1", is_admin=True, verified_by="password")
AUTOMATION = Actor(None)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_loopback_tls(tmp_path_factory.mktemp("requester-tls"))


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path / "hub")


@pytest.fixture
async def contract(hub: Hub, tls: CertFiles) -> AsyncIterator[ContractHub]:
    served = ContractHub(hub)
    runner = await serve(served, tls)
    try:
        yield served
    finally:
        await runner.cleanup()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "evidence"


def hub_args(contract: ContractHub, tls: CertFiles, token: str | None = None) -> list[str]:
    return [
        "--hub",
        contract.url,
        # "=": a token may start with "-", which argparse would take for an option.
        f"--token={token if token is not None else contract.hub.requester_token}",
        "--cafile",
        str(tls.cert),
    ]


def file_args(contract: ContractHub, tls: CertFiles, *extra: str) -> list[str]:
    return [
        "file",
        *hub_args(contract, tls),
        "--reference",
        "CASE-2026-114",
        "--reason",
        "Parcel theft at number 12",
        "--start",
        iso(START - timedelta(hours=2)),
        "--end",
        iso(START - timedelta(hours=1)),
        "--contact",
        "desk@police.example",
        "--wanted-by",
        iso(START + timedelta(days=7)),
        "--json",
        *extra,
    ]


async def file_request(
    contract: ContractHub, tls: CertFiles, capsys: pytest.CaptureFixture[str], *extra: str
) -> str:
    assert await run(file_args(contract, tls, *extra)) == EXIT_OK
    answer = json.loads(capsys.readouterr().out)
    assert answer["status"] == "pending"
    request_id: str = answer["id"]
    return request_id


def clip_bytes(hub: Hub) -> dict[str, bytes]:
    return {
        clip_id: (hub.clips.root / f"{clip_id}.mp4").read_bytes() for clip_id in hub.clips.index
    }


async def test_full_pickup_flow(
    contract: ContractHub, tls: CertFiles, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = contract.hub
    request_id = await file_request(contract, tls, capsys)

    assert await run(["status", request_id, *hub_args(contract, tls)]) == EXIT_OK
    assert capsys.readouterr().out.startswith(f"{request_id}  pending")

    # A person approves while the requester polls.
    waiting = asyncio.create_task(
        run(["wait", request_id, *hub_args(contract, tls), "--interval", "0.01", "--json"])
    )
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await approve_seen(hub.gate, request_id, ADMIN)
    assert await asyncio.wait_for(waiting, 5) == EXIT_OK
    status = json.loads(capsys.readouterr().out)
    assert status["status"] == "fulfilled"
    assert status["pickup_url"].startswith("/api/doorstep/v1/pickup/")

    assert await run(["fetch", request_id, *hub_args(contract, tls), "--out", str(out)]) == EXIT_OK
    report = capsys.readouterr().out
    assert f"hub key {hub.key.key_id}" in report
    assert "VERIFIED: 2 clips match the signed manifest" in report
    assert "CASE-2026-114" in report

    # The archive is kept whole, and the clips are exactly the household's files.
    assert (out / f"{request_id}.tar").is_file()
    for clip_id, data in clip_bytes(hub).items():
        assert (out / request_id / "clips" / f"{clip_id}.mp4").read_bytes() == data
    manifest = json.loads((out / request_id / "manifest.json").read_bytes())
    assert manifest["request_id"] == request_id
    # The gate logged the download before its first byte left.
    kinds = [entry["kind"] for entry in hub.audit.entries_blocking()]
    assert kinds[:3] == ["filed", "approved", "downloaded"]
    assert not list(out.glob(".download-*"))


async def test_fetch_with_pinned_key(
    contract: ContractHub, tls: CertFiles, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = contract.hub
    request_id = await file_request(contract, tls, capsys)
    await approve_seen(hub.gate, request_id, ADMIN)
    pinned = base64.b64encode(hub.key.public_bytes()).decode()
    args = ["fetch", request_id, *hub_args(contract, tls), "--out", str(out)]
    assert await run([*args, "--public-key", pinned]) == EXIT_OK
    assert "VERIFIED" in capsys.readouterr().out

    # A key that is not the hub's: the signature fails, nothing is unpacked.
    other = base64.b64encode(HubKey.generate().public_bytes()).decode()
    assert await run([*args, "--public-key", other]) == EXIT_VERIFY_FAILED
    report = capsys.readouterr().out
    assert "VERIFICATION FAILED: manifest signature does not verify" in report
    assert (out / f"{request_id}.unverified.tar").is_file()


async def test_tampered_clip_fails_verification(
    contract: ContractHub, tls: CertFiles, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = await file_request(contract, tls, capsys)
    await approve_seen(contract.hub.gate, request_id, ADMIN)
    contract.tamper_pickup = True

    code = await run(["fetch", request_id, *hub_args(contract, tls), "--out", str(out)])
    assert code == EXIT_VERIFY_FAILED
    report = capsys.readouterr().out
    assert "VERIFICATION FAILED" in report
    assert "does not match the manifest" in report
    assert "VERIFIED" not in report
    assert (out / f"{request_id}.unverified.tar").is_file()
    assert not (out / f"{request_id}.tar").exists()
    assert not (out / request_id).exists()


async def test_clip_changed_on_the_hub_breaks_off_the_download(
    contract: ContractHub, tls: CertFiles, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gate itself stops a clip that changed since approval; the requester says so."""
    hub = contract.hub
    request_id = await file_request(contract, tls, capsys)
    await approve_seen(hub.gate, request_id, ADMIN)
    first = sorted(hub.clips.index)[0]
    path = hub.clips.root / f"{first}.mp4"
    path.write_bytes(b"\x00" + path.read_bytes()[1:])

    code = await run(["fetch", request_id, *hub_args(contract, tls), "--out", str(out)])
    assert code == EXIT_NETWORK
    assert "broke off" in capsys.readouterr().err
    assert not list(out.glob("*.tar"))
    assert not list(out.glob(".download-*"))


async def test_closed_request(
    contract: ContractHub, tls: CertFiles, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = await file_request(contract, tls, capsys)
    await contract.hub.gate.decline(request_id, AUTOMATION)
    # A decline reads as "closed" only from the deadline on, like an expiry.
    hub = contract.hub
    hub.clock.advance(hub.gate.get(request_id).wanted_by - hub.clock.now)

    assert await run(["status", request_id, *hub_args(contract, tls)]) == EXIT_CLOSED
    assert "declined, expired or revoked" in capsys.readouterr().out
    wait = ["wait", request_id, *hub_args(contract, tls), "--interval", "0.01"]
    assert await run(wait) == EXIT_CLOSED
    fetch = ["fetch", request_id, *hub_args(contract, tls), "--out", str(out)]
    assert await run(fetch) == EXIT_CLOSED
    assert not list(out.iterdir())


async def test_wait_times_out(
    contract: ContractHub, tls: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = await file_request(contract, tls, capsys)
    args = ["wait", request_id, *hub_args(contract, tls), "--interval", "0.01"]
    assert await run([*args, "--timeout", "0.05"]) == EXIT_TIMEOUT
    assert "still pending" in capsys.readouterr().err


async def test_fetch_of_pending_request_is_refused(
    contract: ContractHub, tls: CertFiles, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = await file_request(contract, tls, capsys)
    fetch = ["fetch", request_id, *hub_args(contract, tls), "--out", str(out)]
    assert await run(fetch) == EXIT_HUB_REFUSED
    assert "still pending" in capsys.readouterr().err
    assert contract.hub.gate.get(request_id).state is RequestState.PENDING


async def test_bad_and_missing_token(
    contract: ContractHub,
    tls: CertFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = "A" * 43
    args = file_args(contract, tls)
    args[args.index(f"--token={contract.hub.requester_token}")] = f"--token={bad}"
    assert await run(args) == EXIT_HUB_REFUSED
    assert "did not accept the requester token (401)" in capsys.readouterr().err
    assert contract.hub.gate.requests() == []

    monkeypatch.delenv("DOORSTEP_REQUESTER_TOKEN", raising=False)
    no_token = [a for a in hub_args(contract, tls) if not a.startswith("--token")]
    assert await run(["status", "0" * 26, *no_token]) == EXIT_USAGE
    assert "DOORSTEP_REQUESTER_TOKEN" in capsys.readouterr().err

    # The variable is the way to keep the token out of the process list.
    monkeypatch.setenv("DOORSTEP_REQUESTER_TOKEN", contract.hub.requester_token)
    assert await run(["status", "0" * 26, *no_token]) == EXIT_HUB_REFUSED
    assert "not found (404)" in capsys.readouterr().err


async def test_hub_refusals_are_explained(
    contract: ContractHub, tls: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    # 400 names the field.
    args = file_args(contract, tls)
    args[args.index("--end") + 1] = iso(START - timedelta(hours=3))
    assert await run(args) == EXIT_HUB_REFUSED
    assert "in window.end: must be after window.start" in capsys.readouterr().err

    # 429 beyond the pending cap (5).
    for _ in range(5):
        await file_request(contract, tls, capsys)
    assert await run(file_args(contract, tls)) == EXIT_HUB_REFUSED
    assert "too many requests (429)" in capsys.readouterr().err

    # 413 for a body over 16 KiB.
    big = file_args(contract, tls)
    big[big.index("--reason") + 1] = "x" * 17000
    assert await run(big) == EXIT_HUB_REFUSED
    assert "too large" in capsys.readouterr().err

    # Someone else's request reads as not found.
    _other, other_token = contract.hub.gate.create_requester("Neighbour", RequesterKind.NEIGHBOUR)
    mine = contract.hub.gate.requests()[0].id
    assert await run(["status", mine, *hub_args(contract, tls, other_token)]) == EXIT_HUB_REFUSED
    assert "not found (404)" in capsys.readouterr().err


async def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    hub_url = ["--hub", "https://127.0.0.1:1", "--token", "A" * 43]
    assert await run(["status", "../../etc/passwd", *hub_url]) == EXIT_USAGE
    assert "is not a request id" in capsys.readouterr().err
    assert await run(["status", "0" * 26, "--hub", "ftp://x", "--token", "t"]) == EXIT_USAGE
    assert await run(["status", "0" * 26, "--token", "t"]) == EXIT_USAGE
    assert "--hub" in capsys.readouterr().err
    bad_key = ["fetch", "0" * 26, *hub_url, "--out", "/nonexistent", "--public-key", "abc"]
    assert await run(bad_key) == EXIT_USAGE
    with pytest.raises(SystemExit) as exit_info:
        await run(["file", *hub_url, "--reference", "x"])
    assert exit_info.value.code == EXIT_USAGE


async def test_network_and_tls_errors(
    contract: ContractHub, tls: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    token = contract.hub.requester_token
    closed = f"https://127.0.0.1:{free_port()}"
    assert await run(["status", "0" * 26, "--hub", closed, f"--token={token}"]) == EXIT_NETWORK
    assert "cannot connect to the hub" in capsys.readouterr().err

    # The hub's certificate is self-signed: without --cafile it is refused...
    plain = ["status", "0" * 26, "--hub", contract.url, f"--token={token}"]
    assert await run(plain) == EXIT_NETWORK
    assert "--cafile" in capsys.readouterr().err
    # ...and --insecure reaches it (here: a 404 for an unknown id).
    assert await run([*plain, "--insecure"]) == EXIT_HUB_REFUSED


async def test_upload_delivery_received_and_verified(
    contract: ContractHub, tls: CertFiles, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = contract.hub
    port = free_port()
    request_id = await file_request(
        contract, tls, capsys, "--upload-url", f"https://127.0.0.1:{port}/evidence"
    )
    receiving = asyncio.create_task(
        run(
            [
                "receive",
                *hub_args(contract, tls),
                "--listen",
                f"127.0.0.1:{port}",
                "--cert",
                str(tls.cert),
                "--key",
                str(tls.key),
                "--out",
                str(out),
                "--expect",
                request_id,
                "--timeout",
                "20",
            ]
        )
    )
    await approve_seen(hub.gate, request_id, ADMIN)
    status = await _upload_when_listening(contract, request_id, tls, receiving)
    assert status == 200
    assert await asyncio.wait_for(receiving, 10) == EXIT_OK
    report = capsys.readouterr().out
    assert "VERIFIED: 2 clips" in report
    for clip_id, data in clip_bytes(hub).items():
        assert (out / request_id / "clips" / f"{clip_id}.mp4").read_bytes() == data
    assert hub.gate.get(request_id).state is RequestState.FULFILLED

    # Upload delivery offers no pickup link.
    fetch = ["fetch", request_id, *hub_args(contract, tls), "--out", str(out)]
    assert await run(fetch) == EXIT_HUB_REFUSED
    assert "offers no pickup link" in capsys.readouterr().err


async def test_upload_with_the_wrong_key_is_rejected(
    contract: ContractHub, tls: CertFiles, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    request_id = await file_request(
        contract, tls, capsys, "--upload-url", f"https://127.0.0.1:{port}/evidence"
    )
    other = base64.b64encode(HubKey.generate().public_bytes()).decode()
    receiving = asyncio.create_task(
        run(
            [
                "receive",
                "--listen",
                f"127.0.0.1:{port}",
                "--cert",
                str(tls.cert),
                "--key",
                str(tls.key),
                "--out",
                str(out),
                "--public-key",
                other,
            ]
        )
    )
    await approve_seen(contract.hub.gate, request_id, ADMIN)
    assert await _upload_when_listening(contract, request_id, tls, receiving) == 422
    assert await asyncio.wait_for(receiving, 10) == EXIT_VERIFY_FAILED
    assert "VERIFICATION FAILED" in capsys.readouterr().out
    assert len(list(out.glob("upload-*.unverified.tar"))) == 1
    # The hub heard the archive was not accepted, so it does not count as delivered.
    assert contract.hub.gate.get(request_id).state is RequestState.APPROVED


async def _upload_when_listening(
    contract: ContractHub, request_id: str, tls: CertFiles, receiver: asyncio.Task[int]
) -> int:
    """Upload as the hub would, retrying while the receiver is still starting up."""
    for _ in range(200):
        assert not receiver.done(), "receiver ended before the upload"
        try:
            return await contract.deliver_upload(request_id, tls)
        except aiohttp.ClientConnectorError:
            await asyncio.sleep(0.02)
    raise AssertionError("receiver never listened")


def test_module_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reference_doorbell.requester", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0
    for command in ("file", "status", "wait", "fetch", "receive"):
        assert command in result.stdout
    # Filing, polling and checking an archive must not drag in Home Assistant.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, reference_doorbell.requester, reference_doorbell.requester_verify; "
            "print('homeassistant' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert probe.stdout.strip() == "False"


_STANDALONE_CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import importlib.util
from pathlib import Path
from reference_doorbell.requester_verify import verify
verdict = verify(Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes())
print(verdict.ok, verdict.request_id, len(verdict.clips))
print(importlib.util.find_spec("custom_components") is None)
print(sorted(m for m in sys.modules if m.startswith(("custom_components", "homeassistant"))))
copy = Path(sys.argv[1], "reference_doorbell")
print(Path(sys.modules["reference_doorbell"].__file__).parent == copy)
"""


async def test_a_standalone_install_verifies_an_archive(hub: Hub, tmp_path: Path) -> None:
    """``reference_doorbell`` copied alone (as a requester would install it), in an
    isolated interpreter where the integration cannot be imported, checks a real
    archive from the hub, and notices a flipped byte."""
    request = await hub.gate.file_request(hub.requester_id, request_fields(hub.clock.now))
    request = await approve_seen(hub.gate, request.id, ADMIN)
    assert request.pickup is not None
    token = hub.gate.pickup_token(request.id)
    assert token is not None
    archive = b"".join([c async for c in await hub.gate.open_pickup(token)])
    site = tmp_path / "site"
    shutil.copytree(
        Path(__file__).resolve().parents[2] / "reference_doorbell",
        site / "reference_doorbell",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (tmp_path / "release.tar").write_bytes(archive)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        offset = next(m for m in tar.getmembers() if m.name.startswith("clips/")).offset_data
    flipped = archive[:offset] + bytes([archive[offset] ^ 1]) + archive[offset + 1 :]
    (tmp_path / "flipped.tar").write_bytes(flipped)
    (tmp_path / "key").write_bytes(hub.key.public_bytes())

    def check(name: str) -> list[str]:
        result = subprocess.run(
            [
                sys.executable,
                "-I",
                "-c",
                _STANDALONE_CHECK,
                str(site),
                str(tmp_path / name),
                str(tmp_path / "key"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=tmp_path,
        )
        return result.stdout.splitlines()

    assert check("release.tar") == [
        f"True {request.id} {len(request.frozen_clips)}",
        "True",
        "[]",
        "True",
    ]
    assert check("flipped.tar")[0] == "False None 0"
