"""A throwaway certificate authority for lab and test servers (the reference requester).

Real requesters have certificates from a public CA; in the lab the hub is told to trust
this one through Doorstep's ``trusted_requesters.pem``, exactly as an owner would trust
a police department's private CA.
"""

from __future__ import annotations

from dataclasses import dataclass
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from reference_doorbell.certs import (
    CertFiles,
    build_certificate,
    cert_pem,
    new_key,
    save_cert_files,
)

VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class TestCa:
    """A CA whose certificate file is what a client adds to its trust store."""

    name: str
    cert_path: Path
    _key: ec.EllipticCurvePrivateKey
    _cert: x509.Certificate

    __test__ = False  # not a pytest test class, despite the name

    @classmethod
    def create(cls, directory: Path, name: str = "Doorstep lab CA") -> TestCa:
        directory.mkdir(parents=True, exist_ok=True)
        key = new_key()
        usage = x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        cert = build_certificate(
            name,
            key,
            ca=True,
            path_length=0,
            validity=VALIDITY,
            extensions=[
                (usage, True),
                (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
            ],
        )
        cert_path = directory / "ca.pem"
        cert_path.write_bytes(cert_pem(cert))
        return cls(name, cert_path, key, cert)

    def issue(self, directory: Path, addresses: list[str], stem: str = "server") -> CertFiles:
        """A server certificate for these IP addresses and/or DNS names."""
        directory.mkdir(parents=True, exist_ok=True)
        key = new_key()
        cert = build_certificate(
            addresses[0],
            key,
            alt_names=addresses,
            issuer=(self._cert, self._key),
            validity=VALIDITY,
            extensions=[
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
                (x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False),
            ],
        )
        return save_cert_files(
            cert, key, directory, cert_name=f"{stem}.pem", key_name=f"{stem}.key"
        )
