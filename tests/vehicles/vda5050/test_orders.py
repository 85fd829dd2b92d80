"""Order messages built by the driver: sequenceIds, base/horizon, stitching, per-version fields."""

from __future__ import annotations

import pytest

from tests.robot_fixtures import schema_errors
from vehicles.vda5050 import Action, OrderPlan, PlannedNode, build_order_message, version_info
from vehicles.vda5050.codec import decode, header, parse_topic
from vehicles.vda5050.errors import MalformedMessage
from vehicles.vda5050.orders import instant_action

DROP = Action("drop", "drop-1", "HARD", {"loadId": "pkg-1", "weight": 2.5}, description="hand over")
PLAN = OrderPlan(
    "order-1",
    [
        PlannedNode("s", 0, 0),
        PlannedNode("c", 30, 0),
        PlannedNode("d", 30, 40, (DROP,)),
        PlannedNode("s2", 0, 0),
    ],
    map_id="station-a",
    max_speed=1.7,
)


def build(version: str, **kw) -> dict:
    info = version_info(version)
    message = build_order_message(info, header(info, 7, "acme", "r1"), PLAN, **kw)
    assert schema_errors(version, "order", message) == []
    return message


@pytest.mark.parametrize("version", ["2.0.0", "2.1.0", "3.0.0"])
def test_first_order_releases_the_way_out_and_shows_the_way_back(version):
    m = build(version, update_id=0, first_node=0, released_until=2)
    assert [(n["nodeId"], n["sequenceId"], n["released"]) for n in m["nodes"]] == [
        ("s", 0, True),
        ("c", 2, True),
        ("d", 4, True),
        ("s2", 6, False),
    ]
    assert [(e["sequenceId"], e["released"]) for e in m["edges"]] == [(1, True), (3, True), (5, False)]
    assert [a["actionType"] for a in m["nodes"][2]["actions"]] == ["drop"]
    assert m["edges"][1]["length"] == pytest.approx(40.0)
    assert m["nodes"][1]["nodePosition"]["x"] == 30 and m["nodes"][1]["nodePosition"]["mapId"] == "station-a"
    assert (m["orderId"], m["orderUpdateId"], m["headerId"]) == ("order-1", 0, 7)


def test_versions_differ_where_the_schemas_do():
    v2 = build("2.1.0", update_id=0, first_node=0, released_until=2)
    v3 = build("3.0.0", update_id=0, first_node=0, released_until=2)
    assert v2["edges"][0]["startNodeId"] == "s" and "startNodeId" not in v3["edges"][0]
    assert v2["edges"][0]["maxSpeed"] == 1.7 and v3["edges"][0]["maximumSpeed"] == 1.7
    assert v2["nodes"][0]["nodePosition"]["allowedDeviationXY"] == 0.5
    assert v3["nodes"][0]["nodePosition"]["allowedDeviationXY"] == {"a": 0.5, "b": 0.5, "theta": 0.0}
    assert v2["nodes"][2]["actions"][0]["actionDescription"] == "hand over"
    assert v3["nodes"][2]["actions"][0]["actionDescriptor"] == "hand over"


def test_version_2_0_0_spells_what_its_schema_and_robots_spell():
    """2.0.0 robots refused the 2.1.0 shapes (issue 22): `instantActions`, `allowedDeviationXy`."""
    v20 = build("2.0.0", update_id=0, first_node=0, released_until=2)
    assert v20["version"] == "2.0.0"
    assert v20["nodes"][0]["nodePosition"]["allowedDeviationXy"] == 0.5
    assert "allowedDeviationXY" not in v20["nodes"][0]["nodePosition"]
    assert v20["edges"][0]["startNodeId"] == "s"
    info = version_info("2.0.0")
    cancel = Action("cancelOrder", "c-1", "NONE")
    message = instant_action(info, header(info, 3, "acme", "r1"), [cancel])
    assert message["instantActions"][0]["actionType"] == "cancelOrder" and "actions" not in message
    assert schema_errors("2.0.0", "instantActions", message) == []
    info21 = version_info("2.1.0")
    assert "actions" in instant_action(info21, header(info21, 3, "acme", "r1"), [cancel])
    assert info.topic("acme", "r1", "order") == info21.topic("acme", "r1", "order") == "uagv/v2/acme/r1/order"


def test_a_message_of_another_major_version_is_refused_naming_the_field():
    address = parse_topic("uagv/v2/acme/r1/state")
    body = b'{"headerId": 1, "version": "3.0.0", "serialNumber": "r1"}'
    with pytest.raises(MalformedMessage, match=r"field version: '3\.0\.0' is not VDA 5050 2\.x") as caught:
        decode(body, address, max_bytes=10_000, info=version_info("2.0.0"))
    assert caught.value.kind == "version_mismatch"


def test_update_starts_at_the_stitching_node_without_its_actions():
    m = build("2.1.0", update_id=1, first_node=2, released_until=3)
    assert [(n["nodeId"], n["sequenceId"], n["released"]) for n in m["nodes"]] == [
        ("d", 4, True),
        ("s2", 6, True),
    ]
    assert m["nodes"][0]["actions"] == []  # the drop-off is not sent twice
    assert [e["sequenceId"] for e in m["edges"]] == [5]


def test_bad_plans_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="order_id"):
        OrderPlan("", [PlannedNode("a", 0, 0)], map_id="m")
    with pytest.raises(ValueError, match="nodes"):
        OrderPlan("o", [], map_id="m")
    with pytest.raises(ValueError, match=r"nodes\[1\] \(b\)"):
        OrderPlan("o", [PlannedNode("a", 0, 0), PlannedNode("b", float("nan"), 0)], map_id="m")
    with pytest.raises(ValueError, match="released_until=9"):
        build("2.1.0", update_id=0, first_node=0, released_until=9)
    with pytest.raises(ValueError, match=r"version='1\.1\.0'"):
        version_info("1.1.0")


def test_topics_are_parsed_and_bad_ones_refused():
    address = parse_topic("vda5050/v3/acme/r1/state")
    assert (address.info.version, address.manufacturer, address.serial_number, address.subtopic) == (
        "3.0.0",
        "acme",
        "r1",
        "state",
    )
    assert version_info("2.1.0").topic("acme", "r1", "order") == "uagv/v2/acme/r1/order"
    for bad in ("uagv/v2/acme/r1", "uagv/v1/acme/r1/state", "x/v2/acme/r1/state", "uagv/v2//r1/state"):
        with pytest.raises(MalformedMessage) as info:
            parse_topic(bad)
        assert info.value.kind == "bad_topic"
