"""A throwaway certificate authority for tests and demos: a CA, server and client certificates, TLS contexts.

The simulated station runs its broker over TLS like a real one (`sitl.broker.Broker(tls=True)`), and the
security tests need certificates they can break on purpose (another CA, another host name). Both get them
from here, made with the `cryptography` package on the spot: nothing is shipped, nothing outlives the
temporary directory it is written to. Keys are ECDSA P-256 (fast to make; every TLS 1.2/1.3 stack takes
them); files are PEM, keys written with mode 0600.

`client_context` is the robot simulator's way to trust a CA file (sitl must not import the controller's
drivers, so it does not share `vehicles.vda5050.link.tls_context`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CertFiles", "Pki", "client_context", "make_pki"]


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """What `make_pki` wrote: the CA certificate, the server's pair and one pair per client name."""

    ca_file: Path
    ca_key: Path
    server: CertFiles
    clients: dict[str, CertFiles]


def _write_key(path: Path, key: object) -> None:
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _san(names: Iterable[str]) -> list[object]:
    from cryptography import x509

    out: list[object] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def make_pki(
    directory: str | Path,
    *,
    hosts: Iterable[str] = ("localhost", "127.0.0.1"),
    clients: Iterable[str] = (),
    name: str = "lastmile test CA",
    days: int = 30,
) -> Pki:
    """Write a new CA, a server certificate for `hosts` (names or IP addresses) and client certificates.

    Each call makes a new CA, so two calls give two CAs that do not trust each other (what a "wrong CA"
    test needs). Client certificates carry their name as common name (mosquitto's `use_identity_as_username`
    reads it).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate a clock a little behind
    until = now + dt.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(common_name: str, sans: list[object], usage: x509.ObjectIdentifier, stem: str) -> CertFiles:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)  # type: ignore[arg-type]
        cert = builder.sign(ca_key, hashes.SHA256())
        files = CertFiles(directory / f"{stem}.crt", directory / f"{stem}.key")
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(files.key, key)
        return files

    hosts = list(hosts)
    server = issue(hosts[0] if hosts else "server", _san(hosts), ExtendedKeyUsageOID.SERVER_AUTH, "server")
    issued = {c: issue(c, [], ExtendedKeyUsageOID.CLIENT_AUTH, f"client-{c}") for c in clients}
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_key_file = directory / "ca.key"
    _write_key(ca_key_file, ca_key)
    return Pki(ca_file=ca_file, ca_key=ca_key_file, server=server, clients=issued)


def client_context(
    ca_file: str | Path | None = None, cert: str | Path | None = None, key: str | Path | None = None
) -> ssl.SSLContext:
    """A client's TLS context: verify the server against `ca_file` (the system's CAs when None), check its
    host name, and present `cert`/`key` when given. Unreadable files raise ValueError naming the file."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"CA file {ca_file}: cannot be read as PEM certificates ({exc})") from None
    if cert is not None:
        try:
            context.load_cert_chain(str(cert), str(key) if key else None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"client certificate {cert} / key {key}: cannot be loaded ({exc})") from None
    return context
