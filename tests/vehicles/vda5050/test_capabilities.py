"""A robot's factsheet against the action we are about to send it (vehicles.vda5050.capabilities)."""

from __future__ import annotations

from sitl.robot import SimRobot
from vehicles.vda5050 import version_info
from vehicles.vda5050.capabilities import action_problem

V20, V30 = version_info("2.0.0"), version_info("3.0.0")


def factsheet_2x(parameters: list[dict] | None) -> dict:
    drop = {"actionType": "drop", "actionScopes": ["NODE"]}
    if parameters is not None:
        drop["actionParameters"] = parameters
    return {
        "protocolFeatures": {"agvActions": [drop, {"actionType": "cancelOrder", "actionScopes": ["INSTANT"]}]}
    }


def test_parameters_are_checked_both_ways_when_the_factsheet_lists_them():
    sheet = factsheet_2x(
        [
            {"key": "stationType", "valueDataType": "STRING", "isOptional": False},
            {"key": "loadType", "valueDataType": "STRING"},  # isOptional absent: required
            {"key": "duration", "valueDataType": "NUMBER", "isOptional": True},
        ]
    )
    assert action_problem(V20, sheet, "drop", ["stationType", "loadType"]) is None
    assert action_problem(V20, sheet, "drop", ["stationType", "loadType", "duration"]) is None
    problem = action_problem(V20, sheet, "drop", ["loadId", "loadType", "weight"])
    assert problem is not None and "parameter loadId, weight is not in the robot's factsheet" in problem
    problem = action_problem(V20, sheet, "drop", ["stationType"])
    assert problem == "action 'drop': the robot's factsheet requires parameter loadType"


def test_unknown_action_or_scope_is_named_and_no_factsheet_is_no_objection():
    sheet = factsheet_2x(None)
    assert action_problem(V20, sheet, "drop", ["anything"]) is None  # no parameters listed: not compared
    assert "not in the robot's factsheet (it lists cancelOrder, drop)" in (
        action_problem(V20, sheet, "handover", []) or ""
    )
    assert "only as INSTANT" in (action_problem(V20, sheet, "cancelOrder", []) or "")
    assert action_problem(V20, None, "handover", ["x"]) is None
    assert action_problem(V20, {"protocolFeatures": {}}, "handover", ["x"]) is None


def test_the_simulators_factsheets_take_our_default_drop_in_every_version():
    for version in ("2.0.0", "2.1.0", "3.0.0"):
        sim = SimRobot("s1", version=version)
        info = version_info(version)
        assert action_problem(info, sim.factsheet_message(), "drop", ["loadId", "loadType", "weight"]) is None
    assert "parameter colour" in (
        action_problem(V30, SimRobot("s1", version="3.0.0").factsheet_message(), "drop", ["colour"]) or ""
    )
