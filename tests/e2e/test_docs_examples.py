"""The examples of docs/operators.md and docs/api.md, run against `lastmile serve --simulate`.

The docs and this test cannot drift apart: the test reads the examples out of the markdown. A fenced block
right after an HTML comment `<!-- example -->` is run; other blocks are prose. What a marked block is:

- a block whose lines start with `$ ` (a console session): each command (with its `\\` continuation lines)
  runs in bash, and what it prints must match the lines after it, up to the next `$ `;
- `<!-- example: run -->`: a bash (`curl ...`) or Python block that must succeed; when the next block is
  marked `<!-- example: answer -->` (a JSON block), what the commands printed last must match it;
- `<!-- example: file NAME -->`: the block's text is written to NAME for the commands after it;
- `<!-- example: later -->`: a console session run after the doc's other blocks (it reads the day so far);
- `<!-- example: serve -->` (operators.md): the `lastmile serve` command the station is started with (on a
  free port and a store of the test's own), and what it prints until it listens.

The docs' address, `http://127.0.0.1:8750`, is replaced by the test station's in the commands.
Matching is doctest's, with ELLIPSIS and NORMALIZE_WHITESPACE: `...` stands for anything (ids, times, the
rest of a table), and runs of spaces count as one. JSON answers match by structure: every key the docs show
must be there with a matching value (`"..."` matches any value, a string with `...` is a pattern); a key
`"..."` allows more keys, and a list ending in `"..."` matches a list holding the items shown, in that order,
among others; the answer may carry fields the docs leave out.

The commands run as a reader runs them: in a directory holding the example station, with `LASTMILE_URL`
and `LASTMILE_TOKEN` (the operator token `serve` printed on its first start) exported, also as `$OP`;
`$DISPATCHER` holds the dispatcher token it printed. Console tables are 100 columns wide (`COLUMNS`).
"""

from __future__ import annotations

import doctest
import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.examples import TOLLESON
from tests.e2e.serving import free_port

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"
MARKER = re.compile(r"^<!-- example(?:: (\w+)(?: (\S+))?)? -->\n```(\w*)\n(.*?)^```", re.M | re.S)
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SPEEDUP = 20
DOCS_URL = "http://127.0.0.1:8750"  # the address the docs' examples use


@dataclass
class Block:
    kind: str  # "session", "later", "run", "answer", "file" or "serve"
    arg: str | None
    lang: str
    text: str
    line: int


def blocks(doc: Path) -> list[Block]:
    """The marked blocks of `doc`, in order."""
    text = doc.read_text(encoding="utf-8")
    found = []
    for m in MARKER.finditer(text):
        kind = m.group(1) or "session"
        found.append(Block(kind, m.group(2), m.group(3), m.group(4), text.count("\n", 0, m.start()) + 1))
    return found


@dataclass
class Station:
    """A running `lastmile serve --simulate` and the environment its examples run in."""

    cwd: Path
    env: dict[str, str]
    proc: subprocess.Popen[str]
    started: str  # what serve printed until it listened, its port written as 8750


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    cwd = tmp_path_factory.mktemp("station")
    for name in ("station.toml", "zones.geojson"):
        shutil.copy(TOLLESON / name, cwd / name)
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100", "TERM": "dumb"}
    env.pop("LASTMILE_TOKEN", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    [serve] = [b for b in blocks(DOCS / "operators.md") if b.kind == "serve"]
    [(command, _)] = sessions(serve.text)
    assert command.startswith("lastmile serve "), command
    cmd = [*shlex.split(command), "--port", str(port), "--store", f"sqlite:///{cwd / 'station.sqlite3'}"]
    log = (cwd / "serve.err").open("w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True).start()
    tokens: dict[str, str] = {}
    printed: list[str] = []
    deadline = time.monotonic() + 60
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            raise TimeoutError(f"serve did not start: {(cwd / 'serve.err').read_text()}") from None
        printed.append(line.replace(f"port {port}", "port 8750").replace(f":{port}/", ":8750/"))
        if m := re.match(r"^  (operator|dispatcher) +(\S+)$", line):
            tokens[m.group(1)] = m.group(2)
        if " on port " in line:
            break
    assert set(tokens) == {"operator", "dispatcher"}, "serve's first start prints two tokens"
    env |= {"LASTMILE_URL": f"http://127.0.0.1:{port}", "LASTMILE_TOKEN": tokens["operator"],
            "OP": tokens["operator"], "DISPATCHER": tokens["dispatcher"]}  # fmt: skip
    try:
        yield Station(cwd, env, proc, "".join(printed))
    finally:
        proc.terminate()
        code = proc.wait(30)
        log.close()
    errors = (cwd / "serve.err").read_text()
    assert code == 0 and "Traceback" not in errors, f"serve --simulate ended with {code}:\n{errors[-3000:]}"


def sessions(text: str) -> list[tuple[str, str]]:
    """(command, expected output) of each `$ ` command of a console block."""
    out: list[tuple[str, list[str]]] = []
    continued = False
    for line in text.splitlines():
        if line.startswith("$ ") and not continued:
            out.append((line[2:], []))
        elif continued:
            out[-1] = (out[-1][0] + "\n" + line, out[-1][1])
        else:
            out[-1][1].append(line)
        continued = line.endswith("\\") and not out[-1][1]
    return [(cmd, "\n".join(expected) + "\n") for cmd, expected in out]


def run(station: Station, command: str, *, shell: str = "bash") -> subprocess.CompletedProcess[str]:
    """`command` run by `shell` (bash, or a Python interpreter) where and as a reader runs it; stdout and
    stderr in one stream, in the order a terminal shows them."""
    command = command.replace(DOCS_URL, station.env["LASTMILE_URL"])
    return subprocess.run([shell, "-c", command], cwd=station.cwd, env=station.env, text=True, timeout=60,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip


def json_matches(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Where `actual` differs from the documented `expected` (rules in the module docstring)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        problems = []
        for key, value in expected.items():
            if key == "...":
                continue
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += json_matches(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {actual!r}"]
        more = bool(expected) and expected[-1] == "..."
        items = expected[:-1] if more else expected
        if not more:
            if len(actual) != len(items):
                return [f"{where}: {len(actual)} items, the docs show {len(items)}"]
            return [p for i, e in enumerate(items) for p in json_matches(e, actual[i], f"{where}[{i}]")]
        rest = iter(enumerate(actual))  # with "...": the items shown, in this order, among others
        for e in items:
            if not any(not json_matches(e, a) for _, a in rest):
                return [
                    f"{where}: no item matches {json.dumps(e)[:200]} (in the docs' order) in {actual!r}"[
                        :2000
                    ]
                ]
        return []
    if expected == "...":
        return []
    if isinstance(expected, str) and "..." in expected:
        if CHECKER.check_output(expected, str(actual), doctest.ELLIPSIS):
            return []
        return [f"{where}: {actual!r} does not match {expected!r}"]
    if expected != actual:
        return [f"{where}: {actual!r}, the docs say {expected!r}"]
    return []


def _last_json(output: str) -> Any:
    """What a command printed, as JSON: the whole output, or else its last line."""
    try:
        return json.loads(output)
    except json.JSONDecodeError:
        return json.loads(output.strip().splitlines()[-1] if output.strip() else "")


def check_doc(station: Station, doc: Path) -> int:
    """Run every marked block of `doc`; fail naming each example whose output differs. Returns the count."""
    problems: list[str] = []
    found = blocks(doc)
    assert found, f"{doc.name} has no marked examples"
    last_output = ""
    for block in sorted(found, key=lambda b: b.kind == "later"):  # stable: the rest in the doc's order
        where = f"{doc.name}:{block.line}"
        if block.kind == "serve":
            [(_, expected)] = sessions(block.text)
            if not CHECKER.check_output(expected, station.started, FLAGS):
                problems.append(f"{where}: lastmile serve\n--- docs:\n{expected}--- got:\n{station.started}")
        elif block.kind == "file":
            assert block.arg, f"{where}: a file block needs a name"
            (station.cwd / block.arg).write_text(block.text, encoding="utf-8")
        elif block.kind in ("session", "later"):
            for command, expected in sessions(block.text):
                started = time.monotonic()
                done = run(station, command)
                print(f"{time.monotonic() - started:5.1f} s  {where}: {command.splitlines()[0]}")
                got = done.stdout
                if not CHECKER.check_output(expected, got, FLAGS):
                    problems.append(
                        f"{where}: $ {command}\n--- docs:\n{expected}--- got (exit {done.returncode}):\n{got}"
                    )
        elif block.kind == "run":
            done = run(station, block.text, shell=sys.executable if block.lang == "python" else "bash")
            last_output = done.stdout
            if done.returncode != 0:
                problems.append(f"{where}: exit {done.returncode}\n{done.stdout}")
        elif block.kind == "answer":
            try:
                actual = _last_json(last_output)
            except json.JSONDecodeError:
                problems.append(f"{where}: the example printed no JSON: {last_output!r}")
                continue
            expected = json.loads(block.text)
            problems += [f"{where}: {p}" for p in json_matches(expected, actual)]
    assert not problems, "\n\n".join(problems)
    return len(found)


def test_operators_md_examples_reproduce(station: Station) -> None:
    assert check_doc(station, DOCS / "operators.md") >= 5


def test_api_md_examples_reproduce(station: Station) -> None:
    assert check_doc(station, DOCS / "api.md") >= 3


def test_a_sped_up_simulation_plans_on_the_vehicles_time(station: Station) -> None:
    """`--speedup 20` runs the planning clock with the simulators (as the demo): ETAs are simulated times,
    and the station says so, so `watch` labels them `sim`."""
    headers = {"Authorization": f"Bearer {station.env['LASTMILE_TOKEN']}"}
    fleet = httpx.get(station.env["LASTMILE_URL"] + "/v1/fleet", headers=headers, timeout=30).json()
    assert (fleet["clock"], fleet["clock_speedup"]) == ("sim", SPEEDUP), fleet
