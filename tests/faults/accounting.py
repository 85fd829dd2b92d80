"""The fault suite's closing check, the same for every fault: what became of every key that was submitted.

A fault may cost time, never a package or a second delivery. So each fault test ends by handing the store
and every key it submitted to `account`, and `Accounting.check` says, in one message naming each offending
key with its history, what is wrong:

- every key is in the store (a key answered 201 and then missing is a lost package);
- each ends delivered exactly once, or with the vans with a reason, or failed and then requeued (back to
  `received`, or to the vans) with the failure's reason; a package launched twice must have gone back to
  the queue in between (two flights carrying one package is a second delivery waiting to happen);
- no mission is left open (the store's unfinished missions), unless the test names the key it expects
  still open and why (`open_ok`): a drone whose link never came back is honestly still in the air as far as
  the controller can know, and the test says so rather than the helper guessing;
- no vehicle was booked twice: each vehicle's missions follow one another (the next is created after the
  last one finished), and at most one is open.

Works on any `Store` (SQLite or PostgreSQL), in-process or beside `lastmile serve` processes.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.packages import PackageEvent
from controller.store import Store
from controller.store.records import Mission

__all__ = ["Accounting", "Outcome", "account"]

TERMINAL = frozenset({"delivered", "van"})


@dataclass
class Outcome:
    """One key's end: `verdict` is delivered, van, requeued, open, or lost."""

    key: str
    package_id: str | None
    state: str | None
    verdict: str
    history: list[PackageEvent] = field(default_factory=list)
    reason: str = ""  # the van's or the failure's reason, when there is one

    def trail(self) -> str:
        """The history on one line, for failure messages."""
        return " -> ".join(f"{e.to_state.value}({e.reason})" for e in self.history) or "(no history)"


@dataclass
class Accounting:
    """What `account` found; `check()` raises AssertionError naming every problem."""

    outcomes: dict[str, Outcome]
    open_missions: list[Mission]
    problems: list[str]

    def verdicts(self) -> dict[str, str]:
        """Key -> verdict, for a test's own assertions about which way each key went."""
        return {k: o.verdict for k, o in self.outcomes.items()}

    def check(self) -> None:
        assert not self.problems, "accounting:\n  " + "\n  ".join(self.problems)


def account(store: Store, keys: Iterable[str], *, open_ok: Mapping[str, str] | None = None) -> Accounting:
    """Check every key in `keys` against `store` (see the module docstring).

    `open_ok` maps a key the test expects to be still open (its package not terminal, its mission
    unfinished) to why; such a key is reported `open`, not a problem. Any other open key or mission is.
    """
    open_ok = dict(open_ok or {})
    problems: list[str] = []
    outcomes: dict[str, Outcome] = {}
    ids: dict[str, str] = {}
    for key in keys:
        package = store.get_by_key(key)
        if package is None:
            outcomes[key] = Outcome(key, None, None, "lost")
            problems.append(f"{key}: lost (not in the store)")
            continue
        ids[package.id] = key
        history = store.history(package.id)
        outcome = _judge(key, package.id, package.state.value, history, problems, key in open_ok)
        outcomes[key] = outcome

    missions = store.missions(unfinished_only=False)
    open_missions = [m for m in missions if not m.finished]
    for m in open_missions:
        key = ids.get(m.package_id)
        if key is None or key not in open_ok:
            problems.append(
                f"mission {m.id} ({m.kind}, {m.vehicle_id}, state {m.state}) of "
                f"{key or 'package ' + m.package_id} left open"
            )
    for key, why in open_ok.items():
        o = outcomes.get(key)
        if o is not None and o.verdict != "open":
            problems.append(f"{key}: expected open ({why}) but it ended {o.verdict}: {o.trail()}")
    problems += _double_bookings(missions, ids)
    return Accounting(outcomes, open_missions, problems)


def _judge(
    key: str, package_id: str, state: str, history: list[PackageEvent], problems: list[str], may_be_open: bool
) -> Outcome:
    """One key's verdict from its history; problems appended name the key and show the history."""
    states = [e.to_state.value for e in history]
    outcome = Outcome(key, package_id, state, "open", history)
    delivered = states.count("delivered")
    if delivered > 1:
        problems.append(f"{key}: delivered {delivered} times: {outcome.trail()}")
    # A launch after the first needs the package back in the queue before it (failed and requeued, or
    # "not launched"): otherwise two flights may both carry it.
    launches = [i for i, s in enumerate(states) if s == "launching"]
    for before, after in itertools.pairwise(launches):
        if "received" not in states[before:after]:
            problems.append(f"{key}: launched again without going back to the queue: {outcome.trail()}")
    for i, s in enumerate(states):
        if s == "failed":
            if not history[i].reason.strip():
                problems.append(f"{key}: failed without a reason: {outcome.trail()}")
            if i + 1 < len(states) and states[i + 1] not in ("received", "van"):
                problems.append(f"{key}: failed, then {states[i + 1]} (not requeued): {outcome.trail()}")
            outcome.reason = history[i].reason
    if state == "delivered":
        outcome.verdict = "delivered"
    elif state == "van":
        outcome.verdict = "van"
        outcome.reason = history[-1].reason
        if not outcome.reason.strip():
            problems.append(f"{key}: with the vans without a reason: {outcome.trail()}")
    elif state == "received" and "failed" in states:
        outcome.verdict = "requeued"
    elif not may_be_open:
        problems.append(f"{key}: still {state}, not accounted for: {outcome.trail()}")
    return outcome


def _double_bookings(missions: list[Mission], ids: Mapping[str, str]) -> list[str]:
    """Each vehicle's missions in creation order must not overlap: one ends before the next begins."""
    problems: list[str] = []
    by_vehicle: dict[str, list[Mission]] = defaultdict(list)
    for m in missions:
        if m.kind != "van":
            by_vehicle[m.vehicle_id].append(m)
    for vehicle, ms in by_vehicle.items():
        ms.sort(key=lambda m: (m.created_at, m.id))
        open_now = [m for m in ms if not m.finished]
        if len(open_now) > 1:
            names = ", ".join(ids.get(m.package_id, m.package_id) for m in open_now)
            problems.append(f"{vehicle}: booked twice, {len(open_now)} missions open at once ({names})")
        for a, b in itertools.pairwise(ms):
            if not a.finished or a.updated_at > b.created_at:
                problems.append(
                    f"{vehicle}: booked twice, mission of {ids.get(b.package_id, b.package_id)} created at "
                    f"{b.created_at:%H:%M:%S.%f} while that of {ids.get(a.package_id, a.package_id)} "
                    f"({a.state}) ran until {a.updated_at:%H:%M:%S.%f}"
                )
    return problems
