"""Shared test configuration. Area-specific fixtures live in each tests/<area>/conftest.py.

Tests marked `ardupilot` fly whichever copter target `sitl.ardupilot.copter_target()` names: the real
ArduPilot SITL when `ARDUPILOT_SITL` is set, else the built-in simulator. The run's summary says which one
flew them and how they went, so a run against the built-in simulator is never mistaken for one against
ArduPilot (the header of a run that collects tests/sitl says it too).

Every test also fails (as an error at its teardown) when an event loop reported a lost error during it:
"Task exception was never retrieved" and its relatives, which asyncio only logs, and tasks still pending
when a loop shut down (`asyncio.run` and pytest-asyncio's runner cancel them without a word). Both mean a
fault went nowhere: a package left half-moved, a vehicle still booked. The check covers every loop,
including the ones servers run on their own threads, since it listens where asyncio reports
(`call_exception_handler`'s default logs to the "asyncio" logger) and where runners shut down.
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import gc
import logging
import threading
from collections.abc import Iterator

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One closing line: which copter target the `ardupilot` tests flew, and their outcome."""
    counted = [r for key in ("passed", "failed", "skipped") for r in terminalreporter.stats.get(key, [])]
    flown = [r for r in counted if "ardupilot" in r.keywords and r.when in ("call", "setup")]
    if not flown:
        return
    from sitl.ardupilot import copter_target

    tally: dict[str, int] = {}
    for r in flown:
        if r.when == "call" or r.outcome != "passed":
            tally[r.outcome] = tally.get(r.outcome, 0) + 1
    shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items()))
    terminalreporter.write_line(f"ardupilot-marked tests ({shown}) flew the {copter_target().describe()}")


# --- lost asyncio errors ----------------------------------------------------------------------------------

# What the default exception handler logs when an error or a task went nowhere (asyncio/tasks.py,
# futures.py, runners.py). A handler a test installs itself on its loop is its own business.
_LOST = (
    "Task exception was never retrieved",
    "Future exception was never retrieved",
    "Task was destroyed but it is pending",
    "unhandled exception during asyncio.run() shutdown",
    "Exception in callback",
)
_problems: list[str] = []
_lock = threading.Lock()


class _LostErrors(logging.Handler):
    """Collects what asyncio's default exception handler logs about lost errors, from any thread."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR and message.startswith(_LOST):
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({record.exc_info[1]!r})"
            with _lock:
                _problems.append(f"[{threading.current_thread().name}] {message}")


def _watch_shutdowns() -> None:
    """Record the tasks a runner finds still pending when it shuts its loop down (it cancels them)."""
    cancel_all = getattr(asyncio.runners, "_cancel_all_tasks", None)
    if cancel_all is None or getattr(cancel_all, "_lastmile_watched", False):
        return

    def watched(loop: asyncio.AbstractEventLoop) -> None:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        if pending:
            names = ", ".join(sorted(f"{t.get_name()} ({t.get_coro()!r:.80})" for t in pending))
            with _lock:
                _problems.append(
                    f"[{threading.current_thread().name}] {len(pending)} task(s) left pending at event-loop "
                    f"shutdown: {names}"
                )
        cancel_all(loop)

    watched._lastmile_watched = True  # type: ignore[attr-defined]
    asyncio.runners._cancel_all_tasks = watched  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger("asyncio").addHandler(_LostErrors())
    _watch_shutdowns()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """After the test's own teardown (loops closed, servers stopped): fail it if an error went nowhere."""
    result = yield
    # A task that died with an error says so when it is collected: mostly at once (reference counting), else
    # by a collection. The young generations only: a full pass after every test was half the run's time
    # (80 ms each); what only a full pass finds is reported at the session's end (`pytest_sessionfinish`).
    gc.collect(1)
    found = _take_problems()
    if found:
        listed = "\n  ".join(found)
        pytest.fail(f"asyncio lost an error or a task during this test:\n  {listed}", pytrace=False)
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    """What a last full collection finds fails the run too (it can no longer be pinned on one test)."""
    gc.collect()
    found = _take_problems()
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("asyncio lost an error or a task (found after the tests):", red=True)
            for problem in found:
                reporter.write_line(f"  {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _take_problems() -> list[str]:
    with _lock:
        found, _problems[:] = list(_problems), []
    return found
