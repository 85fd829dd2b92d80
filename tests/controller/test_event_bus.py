"""The event bus's own fields: `seq`, `at` and `type` are never an event's data, and `seq` never goes back."""

from __future__ import annotations

from controller.service.events import EventBus


def test_data_never_replaces_the_bus_fields() -> None:
    bus = EventBus(clock_us=lambda: 0)
    event = bus.publish("vehicle", seq=7, at="then", type="mine", item=3)
    assert (event["seq"], event["type"]) == (1, "vehicle") and event["at"] != "then"
    assert (event["vehicle_seq"], event["vehicle_at"], event["vehicle_type"], event["item"]) == (
        7,
        "then",
        "mine",
        3,
    )
    assert list(event)[:3] == ["seq", "at", "type"]  # first, as the stream always sent them
    bus.publish_many("package", [{"seq": 99, "package_id": "p"}, {"package_id": "q"}])
    assert [(e["seq"], e.get("package_seq")) for e in bus.recent(1)] == [(2, 99), (3, None)]


def test_seq_follows_the_clock_never_goes_back_and_a_successor_numbers_above() -> None:
    now = [1_000]
    bus = EventBus(clock_us=lambda: now[0])
    assert bus.last_seq == 1_000  # before any event: nothing of this bus is at or below it
    assert bus.publish("service")["seq"] == 1_001  # faster than the clock: one more than the last
    now[0] = 5_000
    assert bus.publish("service")["seq"] == 5_000  # the clock's microseconds
    now[0] = 10  # the clock stepped back: the sequence does not
    bus.publish_many("package", [{"package_id": f"p{i}"} for i in range(3)])
    assert [e["seq"] for e in bus.recent(5_000)] == [5_001, 5_002, 5_003] and bus.last_seq == 5_003
    # A controller started later (a restart, a standby taking over) starts above all of it.
    successor = EventBus(clock_us=lambda: 6_000)
    assert successor.publish("service")["seq"] > bus.last_seq
    # The real clock: microseconds since the epoch, exact in JavaScript (below 2^53).
    assert 1_700_000_000_000_000 < EventBus().last_seq < 2**53
