"""Identity storage, pairing lockout and the command line of the reference doorbell."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
import stat

from cryptography import x509
from cryptography.hazmat.primitives import serialization
import pytest

from reference_doorbell.__main__ import build_parser, config_from_args
from reference_doorbell.doorbell import default_state_dir, slugify
from reference_doorbell.identity import Identity, hash_token
from reference_doorbell.pairing import Locked, PairingGuard, RightCode, WrongCode


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_guard_locks_after_limit_and_does_not_extend() -> None:
    clock = FakeClock()
    guard = PairingGuard(max_attempts=3, lock_seconds=60, clock=clock)
    assert guard.attempt(lambda: False) == WrongCode(2)
    assert guard.attempt(lambda: False) == WrongCode(1)
    assert guard.attempt(lambda: False) == WrongCode(0)
    assert guard.attempt(lambda: True) == Locked(60)
    clock.now += 30.2
    # Refused attempts while locked do not push the end of the lock back.
    assert guard.attempt(lambda: False) == Locked(30)
    clock.now += 29.9
    assert guard.attempt(lambda: True) == RightCode()
    assert guard.attempt(lambda: False) == WrongCode(2)


def test_guard_never_checks_code_while_locked() -> None:
    guard = PairingGuard(max_attempts=1, lock_seconds=5, clock=FakeClock())
    guard.attempt(lambda: False)

    def boom() -> bool:
        raise AssertionError("code compared while locked")

    assert isinstance(guard.attempt(boom), Locked)


def test_identity_files_and_fingerprint(tmp_path: Path) -> None:
    identity = Identity(tmp_path, 6)
    identity.load_or_create()
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    assert identity.fingerprint == hashlib.sha256(der).hexdigest()
    for name in ("state.json", "cert.pem", "key.pem"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    # Valid for decades: hubs pin the certificate rather than renew it.
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime.days > 365 * 20

    token = identity.issue_token("Hub", 1.0)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["tokens"][0]["sha256"] == hash_token(token)
    assert identity.find_token(token) == hash_token(token)
    assert identity.find_token(token + "x") is None


def test_unreadable_state_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(RuntimeError, match="Unreadable doorbell state"):
        Identity(tmp_path, 6).load_or_create()


def test_code_length_change_makes_new_code(tmp_path: Path) -> None:
    Identity(tmp_path, 6).load_or_create()
    identity = Identity(tmp_path, 8)
    identity.load_or_create()
    assert len(identity.state.pairing_code) == 8


def test_default_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert slugify("Front door!") == "front-door"
    assert slugify("***") == "doorbell"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_state_dir("Back Gate") == tmp_path / "doorstep-doorbell" / "back-gate"


def test_cli_options_map_to_config(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "--name",
            "Back gate",
            "--state-dir",
            str(tmp_path),
            "--host",
            "192.168.1.20",
            "--port",
            "0",
            "--advertise-address",
            "192.168.1.20",
            "--mdns-interface",
            "192.168.1.20",
            "--code-length",
            "8",
            "--no-http-button",
            "--ring-every",
            "30",
            "--profile",
            "high",
        ]
    )
    config = config_from_args(args)
    assert config.name == "Back gate"
    assert config.state_dir == tmp_path
    assert config.advertise is True
    assert tuple(config.advertise_addresses) == ("192.168.1.20",)
    assert config.mdns_interfaces == ("192.168.1.20",)
    assert config.code_length == 8
    assert config.http_button is False
    assert config.ring_every == 30
    assert config.blockcode is None
    defaults = config_from_args(build_parser().parse_args(["--no-mdns"]))
    assert (defaults.host, defaults.port, defaults.advertise) == ("0.0.0.0", 8443, False)
    assert (defaults.width, defaults.height, defaults.fps) == (640, 360, 15)
    assert config.stream_profile == "high"
    assert defaults.stream_profile == "baseline"  # the protocol's stream unless asked
