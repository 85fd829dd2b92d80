"""Proof of delivery in the store (SQLite and PostgreSQL): written with the delivered move, all or
nothing, kept across a reopen, and a photo URL attached only when it is a safe URL and there is a proof to
attach it to."""

from __future__ import annotations

from typing import Any

import pytest

from controller.errors import InputError
from controller.missions.results import DeliveryProof
from controller.packages import PackageIn, PackageState
from controller.store import Move, Store, UnknownPackage

S = PackageState


def flown(store: Store, key: str) -> str:
    """A package stored and carried as far as en_route."""
    p, _ = store.submit(PackageIn(key=key, weight=1.0, dest_lat=33.45, dest_lon=-112.25))
    for to in (S.ASSIGNED, S.LAUNCHING, S.EN_ROUTE):
        store.transition(p.id, to, reason=str(to), vehicle_id="d1", mode="drone")
    return p.id


def proof(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "vehicle_id": "d1", "kind": "drone", "lat": 33.4500001234, "lon": -112.2500004321,
        "alt_amsl_m": 305.04, "alt_agl_m": 5.04, "confirmed_by": "vehicle",
        "event": "Gripper load releasing", "method": "gripper", **changes,
    }  # fmt: skip
    return DeliveryProof.now(**fields).as_dict()


def test_the_proof_is_stored_with_the_delivery_and_kept(store: Store, store_url: str) -> None:
    pid = flown(store, "p-1")
    assert store.proof_of(pid) is None
    store.transition(pid, S.DELIVERED, reason="delivered by d1", detail={"proof": proof()}, expect=S.EN_ROUTE)
    with Store(store_url) as reopened:  # another Store, as after a restart: committed, not cached
        again = reopened.proof_of(pid)
    assert again is not None
    assert (again["lat"], again["lon"], again["alt_amsl_m"], again["alt_agl_m"]) == (
        33.45, -112.25, 305.0, 5.0  # rounded: 6 decimals of a degree, 0.1 m
    )  # fmt: skip
    assert again["confirmed_by"] == "vehicle" and again["event"] == "Gripper load releasing"
    assert again["at"].tzinfo is not None and again["photo_url"] is None


def test_a_bad_proof_refuses_the_whole_move(store: Store) -> None:
    pid = flown(store, "p-2")
    with pytest.raises(InputError) as err:
        store.transition_many([Move(pid, S.DELIVERED, "delivered", {"proof": proof(confirmed_by="maybe")})])
    assert err.value.field == "proof.confirmed_by"
    assert store.get(pid).state is S.EN_ROUTE and store.proof_of(pid) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("javascript:alert(1)", "scheme"),
        ("data:image/png;base64,AAAA", "scheme"),
        ("https://", "host"),
        ("https://user:secret@img.example/p.jpg", "password"),
        ("https://img.example/a b.jpg", "spaces"),
        ("https://img.example/" + "x" * 2100, "characters long"),
    ],
)
def test_a_bad_photo_url_is_refused_and_changes_nothing(store: Store, url: str, why: str) -> None:
    pid = flown(store, "p-3")
    store.transition(pid, S.DELIVERED, reason="delivered", detail={"proof": proof()})
    with pytest.raises(InputError) as err:
        store.attach_photo(pid, url)
    assert err.value.field == "photo_url" and why in err.value.reason
    assert store.proof_of(pid)["photo_url"] is None  # type: ignore[index]


def test_a_photo_needs_a_delivered_package(store: Store) -> None:
    pid = flown(store, "p-4")
    with pytest.raises(InputError) as err:
        store.attach_photo(pid, "https://img.example/p.jpg")
    assert err.value.field == "state"
    with pytest.raises(UnknownPackage):
        store.attach_photo("nope", "https://img.example/p.jpg")
    store.transition(
        pid, S.DELIVERED, reason="delivered", detail={"proof": proof(kind="robot", alt_amsl_m=None)}
    )
    assert store.attach_photo(pid, "https://img.example/p.jpg")["photo_url"] == "https://img.example/p.jpg"
