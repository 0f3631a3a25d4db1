"""The doorbell's persistent identity: device id, TLS certificate, paired tokens, code.

Everything lives in one state directory:

* ``state.json``: device id, pairing code and the SHA-256 of every issued token;
* ``cert.pem`` / ``key.pem``: the self-signed certificate (EC P-256) and its key.

The device id never changes once made, not even on a factory reset, because hubs use it
to recognise the doorbell. The certificate changes only on a factory reset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
import secrets
import ssl
import tempfile
from typing import Any

from cryptography import x509

from .certs import build_certificate, cert_pem as certificate_pem, fingerprint, key_pem, new_key

_LOGGER = logging.getLogger(__name__)

STATE_FILE = "state.json"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
STATE_VERSION = 1
# A doorbell on a wall outlives any sensible expiry; hubs pin the certificate instead of
# checking dates, so a long validity only avoids surprises in tools that do check.
CERT_VALIDITY = dt.timedelta(days=365 * 30)


@dataclass(slots=True)
class TokenRecord:
    """One paired hub: only the hash of its token is kept."""

    sha256: str
    client: str
    created: float


@dataclass(slots=True)
class DeviceState:
    """What ``state.json`` holds."""

    device_id: str
    pairing_code: str
    tokens: list[TokenRecord] = field(default_factory=list)


def new_device_id() -> str:
    """Return a fresh device id that satisfies the protocol's id rules."""
    return f"db-{secrets.token_hex(4)}"


def new_pairing_code(length: int) -> str:
    """Return a random decimal pairing code of ``length`` digits (leading zeros allowed)."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def hash_token(token: str) -> str:
    """Return the lowercase hex SHA-256 of a token, the only form that is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """Return a new token: 32 random bytes, URL-safe base64 as the protocol says."""
    return secrets.token_urlsafe(32)


class Identity:
    """Loads, creates and saves the doorbell's state directory."""

    def __init__(self, state_dir: Path, code_length: int) -> None:
        self.state_dir = state_dir
        self._code_length = code_length
        self.state: DeviceState
        self.cert_pem: bytes = b""
        self.key_pem: bytes = b""
        self.fingerprint: str = ""

    # ----- loading and saving

    def load_or_create(self) -> None:
        """Read the state directory, creating whatever is missing."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = self._read_state()
        if state is None:
            state = DeviceState(new_device_id(), new_pairing_code(self._code_length))
            _LOGGER.info("Created new device id %s in %s", state.device_id, self.state_dir)
        if len(state.pairing_code) != self._code_length:
            # The configured code length changed since the last run.
            state.pairing_code = new_pairing_code(self._code_length)
        self.state = state
        if not self._read_cert():
            self._make_cert()
        self.save()

    def _read_state(self) -> DeviceState | None:
        path = self.state_dir / STATE_FILE
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
            tokens = [
                TokenRecord(str(t["sha256"]), str(t.get("client", "")), float(t["created"]))
                for t in raw.get("tokens", [])
            ]
            return DeviceState(str(raw["device_id"]), str(raw["pairing_code"]), tokens)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            # A broken file must not silently give the doorbell a new id: hubs would see
            # a different device. Refuse to start instead, and say where the file is.
            raise RuntimeError(f"Unreadable doorbell state in {path}: {err}") from err

    def _read_cert(self) -> bool:
        try:
            cert_pem = (self.state_dir / CERT_FILE).read_bytes()
            key_pem = (self.state_dir / KEY_FILE).read_bytes()
        except FileNotFoundError:
            return False
        self._set_cert(cert_pem, key_pem)
        return True

    def save(self) -> None:
        """Write ``state.json`` atomically, readable only by its owner."""
        data = {
            "version": STATE_VERSION,
            "device_id": self.state.device_id,
            "pairing_code": self.state.pairing_code,
            "tokens": [asdict(t) for t in self.state.tokens],
        }
        _write_private(self.state_dir / STATE_FILE, json.dumps(data, indent=2).encode())

    # ----- certificate

    def _make_cert(self) -> None:
        key = new_key()
        cert = build_certificate(
            self.state.device_id,
            key,
            alt_names=[f"{self.state.device_id}.local"],
            validity=CERT_VALIDITY,
        )
        cert_pem, private_pem = certificate_pem(cert), key_pem(key)
        _write_private(self.state_dir / KEY_FILE, private_pem)
        _write_private(self.state_dir / CERT_FILE, cert_pem)
        self._set_cert(cert_pem, private_pem)
        _LOGGER.info("Created new TLS certificate, fingerprint %s", self.fingerprint)

    def _set_cert(self, cert_pem: bytes, key_pem: bytes) -> None:
        cert = x509.load_pem_x509_certificate(cert_pem)
        self.cert_pem, self.key_pem = cert_pem, key_pem
        self.fingerprint = fingerprint(cert)

    def ssl_context(self) -> ssl.SSLContext:
        """Return a server TLS context (TLS 1.2 or newer) for the current certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.state_dir / CERT_FILE, self.state_dir / KEY_FILE)
        return ctx

    # ----- pairing code and tokens

    def rotate_code(self) -> str:
        """Replace the pairing code (it is used up), save and return the new one."""
        self.state.pairing_code = new_pairing_code(self._code_length)
        self.save()
        return self.state.pairing_code

    def code_matches(self, code: str) -> bool:
        """Compare a presented code with the current one in constant time."""
        return hmac.compare_digest(code.encode(), self.state.pairing_code.encode())

    def issue_token(self, client: str, now: float) -> str:
        """Create a token for a hub, store its hash and return the token itself."""
        token = new_token()
        self.state.tokens.append(TokenRecord(hash_token(token), client, now))
        self.save()
        return token

    def find_token(self, token: str) -> str | None:
        """Return the stored hash that matches ``token``, or ``None``.

        Every stored hash is compared, in constant time, so timing tells nothing about
        which hashes exist or how much of one matched.
        """
        wanted = hash_token(token)
        found: str | None = None
        for record in self.state.tokens:
            if hmac.compare_digest(record.sha256, wanted):
                found = record.sha256
        return found

    def forget_token(self, token_hash: str) -> bool:
        """Forget one paired hub by the hash of its token; return whether it existed."""
        before = len(self.state.tokens)
        self.state.tokens = [t for t in self.state.tokens if t.sha256 != token_hash]
        if len(self.state.tokens) == before:
            return False
        self.save()
        return True

    def forget_all_tokens(self) -> None:
        """Forget every paired hub."""
        self.state.tokens = []
        self.save()

    def factory_reset(self) -> None:
        """New certificate, new code, no paired hubs; the device id stays."""
        self.state.tokens = []
        self.state.pairing_code = new_pairing_code(self._code_length)
        self._make_cert()
        self.save()


def _write_private(path: Path, data: bytes) -> None:
    """Write a file atomically with mode 0600, so a crash never leaves half a key."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
