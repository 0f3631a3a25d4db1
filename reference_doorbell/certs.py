"""The one X.509 certificate builder: EC P-256 keys, SHA-256 signatures.

The doorbell makes its own self-signed certificate with it; the lab's throwaway CA and
the tests' loopback servers use it too, so every certificate in the project is made the
same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import datetime as dt
import hashlib
import ipaddress
from pathlib import Path
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

type PrivateKey = ec.EllipticCurvePrivateKey

DEFAULT_VALIDITY = dt.timedelta(days=30)
# Backdated a day so that a clock a little behind the signer's still accepts it.
_BACKDATE = dt.timedelta(days=1)


def new_key() -> PrivateKey:
    """A fresh EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def subject_alt_names(names: Iterable[str]) -> list[x509.GeneralName]:
    """IP literals as IP addresses, anything else as a DNS name."""
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return general


def build_certificate(
    common_name: str,
    key: PrivateKey,
    *,
    alt_names: Sequence[str] = (),
    ca: bool = False,
    path_length: int | None = None,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    validity: dt.timedelta = DEFAULT_VALIDITY,
    extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """A certificate for ``key``: self-signed unless ``issuer`` (its certificate and
    key) is given. ``extensions`` are extra (extension, critical) pairs."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(subject_alt_names(alt_names)), critical=False
        )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signing_key, hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> bytes:
    """The certificate in PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """The private key in unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 of the DER certificate, in lower-case hex (what hubs pin)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True, slots=True)
class CertFiles:
    """A certificate and its key as PEM files, the way TLS servers load them."""

    cert: Path
    key: Path
    fingerprint: str

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate as its CA (a self-signed one)."""
        return ssl.create_default_context(cafile=str(self.cert))


def save_cert_files(
    cert: x509.Certificate,
    key: PrivateKey,
    directory: Path,
    *,
    cert_name: str = "cert.pem",
    key_name: str = "key.pem",
) -> CertFiles:
    """Write the certificate and its key (readable by the owner only) under
    ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / cert_name, directory / key_name
    cert_path.write_bytes(cert_pem(cert))
    key_path.write_bytes(key_pem(key))
    key_path.chmod(0o600)
    return CertFiles(cert_path, key_path, fingerprint(cert))
