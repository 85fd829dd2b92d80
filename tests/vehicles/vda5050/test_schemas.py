"""The shipped schemas are the official ones, and the fast checker agrees with jsonschema on them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vehicles.vda5050
from sitl.robot import SimRobot
from tests.robot_fixtures import SHARED_SCHEMAS, SHARED_SCHEMAS_200, original_validator
from vehicles.vda5050 import checker, load_schema

SHIPPED = Path(vehicles.vda5050.__file__).parent / "schemas"
VERSIONS = ["2.0.0", "2.1.0", "3.0.0"]


def test_shipped_copies_equal_the_originals():
    originals = sorted(SHARED_SCHEMAS.glob("v*/*.schema"))
    originals_200 = sorted(SHARED_SCHEMAS_200.glob("*.schema"))
    assert len(originals) == 14 and len(originals_200) == 6
    pairs = [(o, SHIPPED / o.parent.name / (o.stem + ".json")) for o in originals]
    pairs += [(o, SHIPPED / "v2.0.0" / (o.stem + ".json")) for o in originals_200]
    for original, shipped in pairs:
        assert shipped.read_bytes() == original.read_bytes(), shipped
    assert (SHIPPED / "LICENSE.txt").read_bytes() == (SHARED_SCHEMAS / "LICENSE.txt").read_bytes()
    assert (SHARED_SCHEMAS_200 / "LICENSE.txt").read_bytes() == (SHARED_SCHEMAS / "LICENSE.txt").read_bytes()
    assert sorted(str(p.relative_to(SHIPPED)) for p in SHIPPED.glob("v*/*.json")) == sorted(
        str(shipped.relative_to(SHIPPED)) for _, shipped in pairs
    )


def test_unknown_version_or_topic_is_a_clear_error():
    with pytest.raises(ValueError, match=r"version='1\.1\.0'"):
        load_schema("1.1.0", "state")
    with pytest.raises(ValueError, match="topic='nonsense'"):
        load_schema("2.1.0", "nonsense")


def samples(version: str) -> dict[str, dict]:
    """Realistic valid messages of each robot-side topic (from the simulator, mid-order)."""
    robot = SimRobot("s1", version=version)
    robot.raise_error("blockedPath", "WARNING", "x")
    return {
        "state": robot.state_message(),
        "connection": robot.connection_message("ONLINE"),
        "factsheet": robot.factsheet_message(),
    }


def mutations(message: dict) -> st.SearchStrategy[dict]:
    """Copies of `message` with one field replaced by something of another JSON type, or removed."""
    paths: list[tuple] = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((*path, k))
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(message, ())
    junk = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 200),
        st.floats(-1e3, 1e3),
        st.text(max_size=5),
        st.just([]),
        st.just({}),
    )

    @st.composite
    def mutate(draw):
        path = draw(st.sampled_from(paths))
        out = copy.deepcopy(message)
        parent = out
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(junk)
        return out

    return mutate()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("topic", ["state", "connection", "factsheet"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fast_checker_agrees_with_jsonschema(version, topic, data):
    message = samples(version)[topic]
    assert checker(version, topic)(message) is None
    mutated = data.draw(mutations(message))
    official = not any(True for _ in original_validator(version, topic).iter_errors(mutated))
    fast = checker(version, topic)(json.loads(json.dumps(mutated))) is None
    assert fast == official, mutated
