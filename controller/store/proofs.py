"""Proof of delivery records: one per delivered package, plus the photo URL an integration may attach.

The proof arrives as the `proof` of a delivered move's detail (`DeliveryProof.as_dict`, put there by the
service) and `Store.record` writes it with that move, in the same transaction (`proof_rows`). Kept apart
from the package methods like the missions: mixed into `Store`, whose `_read`/`_write` it uses.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, select, update

from controller.errors import InputError
from controller.store.errors import UnknownPackage
from controller.store.models import delivery_proofs, packages

__all__ = ["PHOTO_URL_MAX", "ProofStore", "check_photo_url", "proof_row"]

PHOTO_URL_MAX = 2048
_KINDS = ("drone", "robot")
_CONFIRMED = ("vehicle", "inferred")


def check_photo_url(url: object) -> str:
    """An http(s) URL with a host and no credentials, at most `PHOTO_URL_MAX` characters.

    The console shows it as a link: any other scheme (`javascript:`, `data:`) could run or carry content
    in the operator's page, and credentials in a URL would be shown to every viewer.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError("must be a non-empty URL", field="photo_url")
    url = url.strip()
    if len(url) > PHOTO_URL_MAX:
        raise InputError(f"is {len(url)} characters long; at most {PHOTO_URL_MAX}", field="photo_url")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise InputError(f"is not a URL: {exc}", field="photo_url") from exc
    if parts.scheme not in ("http", "https"):
        raise InputError(f"must be an http or https URL, got scheme {parts.scheme!r}", field="photo_url")
    if not host:
        raise InputError("has no host", field="photo_url")
    if parts.username is not None or parts.password is not None:
        raise InputError("must not carry a user name or password", field="photo_url")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InputError("must not contain spaces or control characters", field="photo_url")
    return url


def proof_row(package_id: str, proof: Mapping[str, Any]) -> dict[str, Any]:
    """A checked row of `delivery_proofs` from a `DeliveryProof.as_dict()`."""

    def number(name: str) -> float | None:
        value = proof.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"must be a number, got {value!r}", field=f"proof.{name}")
        return float(value)

    kind, confirmed = proof.get("kind"), proof.get("confirmed_by")
    if kind not in _KINDS:
        raise InputError(f"must be one of {', '.join(_KINDS)}, got {kind!r}", field="proof.kind")
    if confirmed not in _CONFIRMED:
        allowed = ", ".join(_CONFIRMED)
        raise InputError(f"must be one of {allowed}, got {confirmed!r}", field="proof.confirmed_by")
    at = proof.get("at")
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise InputError(f"must be an aware UTC time, got {at!r}", field="proof.at")
    photo = proof.get("photo_url")
    return {
        "package_id": package_id,
        "vehicle_id": str(proof.get("vehicle_id") or "")[:64],
        "kind": kind,
        "at": when.astimezone(UTC),
        "lat": number("lat"),
        "lon": number("lon"),
        "alt_amsl_m": number("alt_amsl_m"),
        "alt_agl_m": number("alt_agl_m"),
        "confirmed_by": confirmed,
        "event": str(proof.get("event") or "")[:200],
        "method": str(proof.get("method") or "")[:32],
        "photo_url": None if photo is None else check_photo_url(photo),
        "photo_at": None if photo is None else when.astimezone(UTC),
    }


def _proof(row: Row[Any]) -> dict[str, Any]:
    data = dict(row._mapping)
    data.pop("package_id", None)
    return data


class ProofStore:
    """The proof-of-delivery half of `Store`."""

    def _read(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def proof_of(self, package_id: str) -> dict[str, Any] | None:
        """The package's proof of delivery (None: not delivered, or delivered before proofs were kept)."""
        return self.proofs_of([package_id]).get(package_id)

    def proofs_of(self, package_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Package id -> proof, for those of `package_ids` that have one."""
        out: dict[str, dict[str, Any]] = {}
        ids = builtins.list(package_ids)
        with self._read() as conn:
            for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                query = select(delivery_proofs).where(delivery_proofs.c.package_id.in_(chunk))
                out.update((r.package_id, _proof(r)) for r in conn.execute(query))
        return out

    def recent_proofs(self, limit: int = 50) -> builtins.list[dict[str, Any]]:
        """The latest proofs, newest first, each with its package's `package_id` and `key` (the console)."""
        query = (
            select(delivery_proofs, packages.c.key)
            .join(packages, packages.c.id == delivery_proofs.c.package_id)
            .order_by(delivery_proofs.c.at.desc(), delivery_proofs.c.package_id)
            .limit(limit)
        )
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def attach_photo(self, package_id: str, url: str, *, at: datetime | None = None) -> dict[str, Any]:
        """Attach (or replace) the photo URL of a delivered package's proof; returns the proof.

        `UnknownPackage` for no such package; an `InputError` naming `photo_url` for a bad URL, or naming
        `state` for a package with no proof (not delivered yet): nothing is changed then.
        """
        url = check_photo_url(url)
        when = at or datetime.now(UTC)
        with self._write() as conn:
            if conn.execute(select(packages.c.id).where(packages.c.id == package_id)).first() is None:
                raise UnknownPackage(package_id)
            done = conn.execute(
                update(delivery_proofs)
                .where(delivery_proofs.c.package_id == package_id)
                .values(photo_url=url, photo_at=when)
            )
            if done.rowcount == 0:
                raise InputError(
                    f"package {package_id} has no proof of delivery (not delivered by a drone or robot)",
                    field="state",
                )
            query = select(delivery_proofs).where(delivery_proofs.c.package_id == package_id)
            row = conn.execute(query).one()
        return _proof(row)
