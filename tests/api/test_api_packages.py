"""Submitting, reading and listing packages over real HTTP: idempotency, all-or-nothing batches, and
422s that name the field."""

from __future__ import annotations

import httpx
import pytest

from controller.api.server import ApiThread
from tests.api.helpers import package


def _count(op: httpx.Client) -> int:
    return len(op.get("/v1/packages", params={"limit": 1000}).json()["items"])


def test_single_package_is_stored_and_decided_at_once(op: httpx.Client) -> None:
    r = op.post("/v1/packages", json=package("p-1"))
    assert r.status_code == 201
    body = r.json()
    assert body["key"] == "p-1" and body["created"] is True
    # No vehicle is connected: the station says at once that a van takes it, and why.
    assert body["state"] == "van"
    assert body["decision"]["decision"] == "van"
    assert "no_vehicle_available" in body["decision"]["reasons"]
    assert body["decision"]["hints"]  # what would have made it eligible, per vehicle kind


def test_get_package_shows_kg_and_lb_distance_and_history(op: httpx.Client) -> None:
    created = op.post("/v1/packages", json=package("p-2", weight=2, weight_unit="lb")).json()
    r = op.get(f"/v1/packages/{created['id']}")
    assert r.status_code == 200
    p = r.json()
    assert p["weight_lb"] == pytest.approx(2.0)
    assert p["weight_kg"] == pytest.approx(0.907185, abs=1e-6)
    assert p["distance_m"] == pytest.approx(p["distance_mi"] * 1609.344, rel=1e-3)
    assert 1000 < p["distance_m"] < 1500
    states = [(h["from_state"], h["to_state"]) for h in p["history"]]
    assert states == [(None, "received"), ("received", "van")]
    assert p["decision"]["decision"] == "van"


def test_unknown_package_is_404_with_field(op: httpx.Client) -> None:
    r = op.get("/v1/packages/nope")
    assert r.status_code == 404
    assert r.json()["error"]["field"] == "package_id"


def test_idempotent_repeat_gives_same_package_and_200(op: httpx.Client) -> None:
    first = op.post("/v1/packages", json=package("same"))
    again = op.post("/v1/packages", json=package("same"))
    # The same content in other units is the same package, too.
    in_kg = op.post("/v1/packages", json=package("same", weight=1.5 * 0.45359237, weight_unit="kg"))
    assert first.status_code == 201
    assert again.status_code == 200 and in_kg.status_code == 200
    assert again.json()["id"] == first.json()["id"] == in_kg.json()["id"]
    assert again.json()["created"] is False
    assert _count(op) == 1


def test_key_reused_with_other_content_is_409_and_changes_nothing(op: httpx.Client) -> None:
    first = op.post("/v1/packages", json=package("k")).json()
    before = op.get(f"/v1/packages/{first['id']}").json()
    r = op.post("/v1/packages", json=package("k", weight=3.0))
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["field"] == "key" and err["code"] == "idempotency_conflict"
    assert first["id"] in err["reason"]
    assert op.get(f"/v1/packages/{first['id']}").json() == before
    assert _count(op) == 1


def test_batch_stores_all_and_answers_in_order(op: httpx.Client) -> None:
    batch = [package(f"b-{i}", dest_lat=33.45 + i * 0.001) for i in range(5)]
    r = op.post("/v1/packages", json={"packages": batch})
    assert r.status_code == 201
    results = r.json()["packages"]
    assert [x["key"] for x in results] == [f"b-{i}" for i in range(5)]
    assert all(x["created"] for x in results)
    # Repeating the batch with one new package: 201, and only that one is new.
    r2 = op.post("/v1/packages", json={"packages": [*batch, package("b-new")]})
    assert r2.status_code == 201
    assert [x["created"] for x in r2.json()["packages"]] == [False] * 5 + [True]
    assert _count(op) == 6


def test_bad_item_rejects_whole_batch(op: httpx.Client) -> None:
    batch = [package("ok-1"), package("bad", weight=-1), package("ok-2")]
    r = op.post("/v1/packages", json={"packages": batch})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "packages.1.weight" and err["row"] == 1
    assert _count(op) == 0


def test_every_bad_item_of_a_batch_is_named_and_nothing_is_stored(op: httpx.Client) -> None:
    batch = [package("ok-1"), 5, package("ok-2", dest_lat=95), package("ok-3")]
    r = op.post("/v1/packages", json={"packages": batch})
    assert r.status_code == 422
    named = [(e["field"], e["row"]) for e in r.json()["errors"]]
    assert named == [("packages.1", 1), ("packages.2.dest_lat", 2)]
    assert r.json()["errors"][0]["reason"] == "each package must be a JSON object"
    assert _count(op) == 0


def test_conflict_inside_batch_rejects_whole_batch(op: httpx.Client) -> None:
    op.post("/v1/packages", json=package("taken"))
    r = op.post("/v1/packages", json={"packages": [package("fresh"), package("taken", weight=9)]})
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "packages.1.key"
    assert _count(op) == 1


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"weight": -2}, "weight", "greater than zero"),
        ({"weight": 0}, "weight", "greater than zero"),
        ({"dest_lat": 95.0}, "dest_lat", "outside -90..90"),
        ({"dest_lon": -200.0}, "dest_lon", "outside -180..180"),
        ({"deadline": "2026-11-22T14:00:00"}, "deadline", "no time zone"),
        ({"weight_unit": "stone"}, "weight_unit", "unknown weight unit"),
        ({"priority": 12}, "priority", "0 (normal) to 9"),
        ({"weight": "heavy"}, "weight", "must be a number"),
        ({"length_m": 40}, "length_m", "centimetres"),
        ({"colour": "red"}, "colour", "not a known field"),
        ({"earliest": "2026-11-22T15:00:00Z", "deadline": "2026-11-22T14:00:00Z"}, "earliest", "before"),
    ],
)
def test_bad_input_is_422_naming_field_and_reason(
    op: httpx.Client, override: dict, field: str, words: str
) -> None:
    r = op.post("/v1/packages", json=package("bad-1", **override))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field
    assert words in err["reason"]
    assert _count(op) == 0


def test_missing_fields_are_each_named(op: httpx.Client) -> None:
    r = op.post("/v1/packages", json={"key": "x"})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"weight", "dest_lat", "dest_lon"} <= fields


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "(body)"),
        (b"[1, 2]", "(body)"),
        (b'{"packages": []}', "packages"),
        (b'{"packages": [1]}', "packages.0"),
        (b'{"packages": [], "extra": 1}', "extra"),
    ],
)
def test_malformed_bodies_are_422(op: httpx.Client, body: bytes, field: str) -> None:
    r = op.post("/v1/packages", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field


def test_list_is_paginated_with_a_next_cursor_and_filters_by_state(op: httpx.Client) -> None:
    op.post("/v1/packages", json={"packages": [package(f"l-{i}") for i in range(7)]})
    keys: list[str] = []
    after = None
    pages = 0
    while True:
        page = op.get("/v1/packages", params={"limit": 3, **({"after": after} if after else {})}).json()
        keys += [p["key"] for p in page["items"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert keys == [f"l-{i}" for i in range(7)] and pages == 3
    assert len(op.get("/v1/packages", params={"state": "van"}).json()["items"]) == 7
    assert op.get("/v1/packages", params={"state": "delivered"}).json()["items"] == []
    bad = op.get("/v1/packages", params={"state": "lost"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"
    bad_after = op.get("/v1/packages", params={"after": "nope"})
    assert bad_after.status_code == 422 and bad_after.json()["error"]["field"] == "after"


def test_operator_hands_a_queued_package_to_vans(api: ApiThread, op: httpx.Client) -> None:
    op.post("/v1/fleet/ground", json={"reason": "test hold"})
    pid = op.post("/v1/packages", json=package("to-van")).json()["id"]
    r = op.post(f"/v1/packages/{pid}/van", json={"reason": "customer asked for a van"})
    assert r.status_code == 200
    p = r.json()
    assert p["state"] == "van" and p["reasons"] == ["operator"]
    assert p["history"][-1]["reason"] == "customer asked for a van"
    again = op.post(f"/v1/packages/{pid}/van")
    assert again.status_code == 409 and again.json()["error"]["field"] == "state"
    assert op.post("/v1/packages/nope/van").status_code == 404
