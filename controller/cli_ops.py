"""The operator's console commands, spoken over the station's API: status, watch, submit, import, launch,
abort, ground, unground, report.

They are plain functions with typer annotations; `register(app)` adds them to the main `lastmile` app
(`import_` under the name `import`). Each takes `--url` (default http://127.0.0.1:8750) and `--token`
(default: the LASTMILE_TOKEN environment variable). A refused request prints one red line naming the field
and the reason and exits with 2; an unreachable server exits with 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from controller.client import DEFAULT_URL, ApiError, LastmileClient, Unreachable
from controller.report import report_table
from controller.watch import event_line, follow
from geofences.errors import LastmileError

__all__ = [
    "abort",
    "close",
    "ground",
    "import_",
    "launch",
    "open_",
    "register",
    "report",
    "status",
    "submit",
    "unground",
    "watch",
]

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error is one line: paths and commands stay whole

Url = Annotated[str, typer.Option("--url", help="the station API", envvar="LASTMILE_URL")]
Token = Annotated[str | None, typer.Option("--token", help="API token", envvar="LASTMILE_TOKEN")]
JsonOut = Annotated[bool, typer.Option("--json", help="print the raw JSON answer")]


# Messages are printed escaped: rich would take "[lon, lat]" in a reason for markup and swallow it.
_TOKEN_HINTS = {
    401: "give the station's API token with --token or the LASTMILE_TOKEN environment variable "
    "(`lastmile token create --role operator --station FILE` makes one)",
    403: "this token's role may not do this: use an operator's token (--token or LASTMILE_TOKEN)",
}


@contextmanager
def _client(url: str, token: str | None) -> Iterator[LastmileClient]:
    client = LastmileClient(url, token)
    try:
        yield client
    except Unreachable as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from exc
    except ApiError as exc:
        for problem in exc.errors[1:10] if len(exc.errors) > 1 else []:
            err_console.print(escape(f"  {problem.get('field') or ''}: {problem.get('reason')}"))
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        if exc.status in _TOKEN_HINTS:
            err_console.print(_TOKEN_HINTS[exc.status])
        raise typer.Exit(code=2) from exc
    except LastmileError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    finally:
        client.close()


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _decision_text(decision: dict[str, Any]) -> str:
    kind = decision.get("decision")
    if kind in ("drone", "robot"):
        return f"{kind} {decision.get('vehicle_id')}, ETA {decision.get('eta') or '-'}"
    if kind == "queued":
        extra = decision.get("reason") or (f"{decision.get('mode')} ETA {decision.get('eta')}")
        return f"queued ({extra})"
    if kind == "van":
        hints = "; ".join(t for per_kind in decision.get("hints", {}).values() for t in per_kind.values())
        reasons = ", ".join(decision.get("reasons") or [])
        return f"van: {reasons}" + (f" ({hints})" if hints else "")
    return str(kind)


def _print_results(results: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("key", "package", "new", "state", "decision"):
        table.add_column(column)
    for r in results:
        new = "yes" if r["created"] else "repeat"
        table.add_row(r["key"], r["id"], new, r["state"], _decision_text(r["decision"]))
    console.print(table)


# --- commands ----------------------------------------------------------------------------------------------


def status(url: Url = DEFAULT_URL, token: Token = None, json_out: JsonOut = False) -> None:
    """Show the controller's role (leader or standby, and its lease epoch), the fleet (each vehicle's link,
    charge, mode, mission) and the package queue."""
    with _client(url, token) as client:
        data = client.fleet()
        try:
            health = client.request("GET", "/healthz")
        except ApiError:  # a 503 (the store is away): the fleet answered, so say what we have
            health = {}
    data = {**data, "role": health.get("role"), "epoch": health.get("epoch")}
    if json_out:
        console.print_json(json.dumps(data))
        return
    epoch = "" if data["epoch"] is None else f", epoch {data['epoch']}"
    if data["role"] == "leader":
        console.print(f"role: [bold green]leader[/]{epoch}")
    elif data["role"] is not None:  # a standby (or a leader that was just fenced): it commands nothing
        console.print(f"role: [bold yellow]{data['role']}[/]{epoch}; {health.get('leader') or ''}")
    if data["grounded"]:
        console.print(f"[bold yellow]FLEET GROUNDED:[/] {data['grounded_reason']}")
    if data.get("station_closed"):
        console.print(f"[bold yellow]STATION CLOSED TO DRONES:[/] {data['station_closed_reason']}")
    fleet = Table(title=f"{data['station']}: fleet")
    for column in ("vehicle", "kind", "online", "charge", "mode", "mission", "link age s", "errors"):
        fleet.add_column(column)
    for v in data["vehicles"]:
        charge = v.get("charge")
        fleet.add_row(
            v["vehicle_id"],
            v["kind"],
            "yes" if v.get("online") else "[red]no[/]",
            "-" if charge is None else f"{charge * 100:.0f} %",
            _fmt(v.get("mode")),
            _fmt(v.get("mission_id")),
            _fmt(v.get("link_age_s"), 1),
            ", ".join(v.get("errors") or []) or "-",
        )
    console.print(fleet)
    queue = Table(title="packages by state")
    queue.add_column("state")
    queue.add_column("packages", justify="right")
    for state, n in data["queue"].items():
        queue.add_row(state, str(n))
    console.print(queue)


def watch(
    url: Url = DEFAULT_URL,
    token: Token = None,
    since: Annotated[int | None, typer.Option(help="replay events after this sequence number")] = None,
    count: Annotated[int, typer.Option(help="stop after this many new events (0: never)")] = 0,
    dashboard: Annotated[
        bool | None,
        typer.Option(
            "--dashboard/--events",
            help="the live dashboard, or one line per event (default: the dashboard on a terminal)",
        ),
    ] = None,
    json_out: JsonOut = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="events with every field (ids, positions, flags)")
    ] = False,
) -> None:
    """Watch the station live: vehicles, missions with progress, the queue and events, until Ctrl-C.

    Event times are the station's wall clock, ETAs its planning clock; both in UTC, and said so."""
    if dashboard is None:
        dashboard = console.is_terminal and not json_out
    if dashboard and not json_out:
        with _client(url, token):  # the same errors and exit codes as every command
            try:
                asyncio.run(follow(url, token, console=console, since=since, count=count, verbose=verbose))
            except KeyboardInterrupt:
                return
        return
    seen = 0
    keys: dict[str, str] = {}  # package id -> key, from the package events seen
    with _client(url, token) as client:
        try:
            eta_clock = "wall" if json_out else _eta_clock(client)
            for event in client.events(since):
                if json_out:
                    console.print(json.dumps(event), highlight=False, soft_wrap=True)
                else:
                    line = event_line(event, keys, verbose=verbose, eta_clock=eta_clock)
                    console.print(line, highlight=False, soft_wrap=True, markup=False)
                seen += 1
                if count and seen >= count:
                    return
        except KeyboardInterrupt:
            return


def _eta_clock(client: Any) -> str:
    """The clock the station's ETAs are on (`GET /v1/fleet`'s `clock`: "sim" in a simulated day)."""
    try:
        return "sim" if client.fleet().get("clock") == "sim" else "wall"
    except ApiError:  # a token that may read events but not the fleet: the usual wall clock
        return "wall"


def submit(
    key: Annotated[str, typer.Option(help="your idempotency key for this package")],
    weight: Annotated[float, typer.Option(help="weight, in --unit")],
    lat: Annotated[float, typer.Option(help="destination latitude")],
    lon: Annotated[float, typer.Option(help="destination longitude")],
    unit: Annotated[str, typer.Option(help="kg or lb")] = "kg",
    deadline: Annotated[str | None, typer.Option(help="ISO 8601 with a time zone")] = None,
    earliest: Annotated[str | None, typer.Option(help="ISO 8601 with a time zone")] = None,
    priority: Annotated[int, typer.Option(help="0 normal .. 9 most urgent")] = 0,
    length_m: Annotated[float | None, typer.Option("--length", help="metres")] = None,
    width_m: Annotated[float | None, typer.Option("--width", help="metres")] = None,
    height_m: Annotated[float | None, typer.Option("--height", help="metres")] = None,
    recipient: Annotated[str | None, typer.Option()] = None,
    note: Annotated[str | None, typer.Option()] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    json_out: JsonOut = False,
    allow_late: Annotated[bool, typer.Option("--allow-late", help="accept a deadline already past")] = False,
) -> None:
    """Submit one package and print what the station decided (drone, robot, queued, or van and why)."""
    package = {
        "key": key,
        "weight": weight,
        "weight_unit": unit,
        "dest_lat": lat,
        "dest_lon": lon,
        "deadline": deadline,
        "earliest": earliest,
        "priority": priority,
        "length_m": length_m,
        "width_m": width_m,
        "height_m": height_m,
        "recipient": recipient,
        "note": note,
    }
    with _client(url, token) as client:
        results = client.submit([{k: v for k, v in package.items() if v is not None}], allow_late=allow_late)
    if json_out:
        console.print_json(json.dumps(results[0]))
    else:
        _print_results(results, "submitted")


BATCH_SIZE = 1000  # packages a request: a progress step a few seconds long, far below the API's 10,000


def import_(
    csv_file: Annotated[Path, typer.Argument(help="packages CSV (see `lastmile assign --help` for columns)")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    json_out: JsonOut = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="packages a request (the station takes at most 10,000)")
    ] = BATCH_SIZE,
    allow_late: Annotated[
        bool, typer.Option("--allow-late", help="accept deadlines that are already past")
    ] = False,
) -> None:
    """Submit every package of a CSV file, in batches, with a progress bar.

    The whole file is checked first: one bad row and nothing is sent. Each package's `key` is its
    idempotency key, so after an interruption the same command again resumes: what the station already
    stored comes back as a repeat, never a second package.
    """
    from controller.intake import load_packages_csv

    with _client(url, token) as client:
        read = load_packages_csv(csv_file, now=datetime.now(UTC), allow_late=allow_late)
        if read.encoding_note:
            err_console.print(f"note: {csv_file} is {read.encoding_note}", markup=False, highlight=False)
        packages = [p.model_dump(mode="json", exclude_none=True) for p in read.packages]
        results = _send_batches(
            client, packages, read.rows, batch_size, allow_late=allow_late, quiet=json_out
        )
    if json_out:
        console.print_json(json.dumps(results))
        return
    new = sum(r["created"] for r in results)
    _print_results(results[:50], f"{csv_file.name}: {len(results)} packages, {new} new")
    if len(results) > 50:
        console.print(f"... and {len(results) - 50} more")


def _send_batches(
    client: LastmileClient,
    packages: list[dict[str, Any]],
    rows: list[int],
    size: int,
    *,
    allow_late: bool,
    quiet: bool,
) -> list[dict[str, Any]]:
    """Submit `packages` `size` at a time; on a failure, say what was stored and how to resume, and re-raise.

    A refusal inside a batch names the file's row (`rows`), not the package's place in that batch.
    """
    results: list[dict[str, Any]] = []
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("packages"),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
    )
    with progress:
        task = progress.add_task("import", total=len(packages))
        for start in range(0, len(packages), size):
            try:
                results += client.submit(packages[start : start + size], allow_late=allow_late)
            except (ApiError, Unreachable) as exc:
                progress.stop()
                _say_stopped(rows, start, size)
                raise _in_file(exc, rows[start : start + size]) from exc
            except KeyboardInterrupt:
                progress.stop()
                _say_stopped(rows, start, size)
                raise typer.Exit(code=130) from None
            progress.advance(task, min(size, len(packages) - start))
    return results


def _say_stopped(rows: list[int], start: int, size: int) -> None:
    first, last = rows[start], rows[min(start + size, len(rows)) - 1]
    err_console.print(
        f"stopped at rows {first}-{last}: the {start} packages before were sent and stored (that batch "
        "may be too); run the same command again to resume (packages already stored are known by their "
        "key and not stored twice)",
        markup=False,
        soft_wrap=True,
    )


def _in_file(exc: ApiError | Unreachable, rows: list[int]) -> ApiError | Unreachable:
    """`exc` with each `packages.<i>.<field>` of the batch said as the file's row and field."""
    if not isinstance(exc, ApiError):
        return exc
    errors = []
    for problem in exc.errors:
        field = str(problem.get("field") or "")
        parts = field.split(".", 2)
        if len(parts) == 3 and parts[0] == "packages" and parts[1].isdigit() and int(parts[1]) < len(rows):
            row = rows[int(parts[1])]
            problem = {
                **problem,
                "field": parts[2],
                "row": row,
                "reason": f"row {row}: {problem.get('reason')}",
            }
        errors.append(problem)
    first = errors[0] if errors else {}
    return ApiError(exc.status, first.get("field"), str(first.get("reason", exc.reason)), errors)


def launch(
    mission_id: Annotated[
        str | None, typer.Argument(metavar="MISSION", help="a held mission's id (see `lastmile watch`)")
    ] = None,
    all_ready: Annotated[
        bool, typer.Option("--all-ready", help="launch every mission waiting for an operator")
    ] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Launch a mission that waits for an operator (stations with `launch = "operator"`), or all of them."""
    if (mission_id is None) == (not all_ready):
        raise typer.BadParameter(
            "give one mission id, or --all-ready for every mission waiting for a launch (not both)",
            param_hint="MISSION",
        )
    with _client(url, token) as client:
        if mission_id is not None:
            client.launch(mission_id)
            console.print(f"mission {mission_id} launched")
            return
        held = [m for m in client.missions() if m["state"] == "held"]
        if not held:
            console.print("no mission is waiting for a launch")
        for mission in held:
            try:
                client.launch(mission["id"])
            except ApiError as exc:
                if exc.status != 404:
                    raise  # grounded (409) or refused: the rest would fail alike
                console.print(f"mission {mission['id']} is no longer waiting (launched or aborted meanwhile)")
                continue
            console.print(
                f"mission {mission['id']} launched: {mission['vehicle_id']}, package {mission['package_id']}"
            )


def abort(
    mission_id: Annotated[str, typer.Argument(help="the mission to abort")],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Abort a mission: a held one is released, a flying one returns home."""
    with _client(url, token) as client:
        client.abort(mission_id)
    console.print(f"mission {mission_id} aborted")


def ground(
    reason: Annotated[str, typer.Option(help="why (shown with every queued package)")] = "weather hold",
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Ground the fleet: nothing launches until `unground`; vehicles in the air carry on."""
    with _client(url, token) as client:
        data = client.ground(reason)
    console.print(f"[bold yellow]fleet grounded:[/] {data['grounded_reason']}")


def unground(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Release the fleet: planning resumes for every queued package."""
    with _client(url, token) as client:
        client.unground()
    console.print("[bold green]fleet released[/]")


def close(
    reason: Annotated[str, typer.Option(help="why (shown in the event stream)")] = "closed by an operator",
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Close the station to drones: none launches or lands; drones coming home go to rally points."""
    with _client(url, token) as client:
        data = client.close_station(reason)
    console.print(f"[bold yellow]station closed to drones:[/] {data['station_closed_reason']}")


def open_(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Open the station to drones again: they launch and land here."""
    with _client(url, token) as client:
        client.open_station()
    console.print("[bold green]station open[/]")


def report(
    day: Annotated[str | None, typer.Option(help="UTC day YYYY-MM-DD (default: today)")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    json_out: JsonOut = False,
) -> None:
    """Print the end-of-day figures: deliveries by mode, on time, delivery time, van fallbacks, energy."""
    if day is not None:
        try:
            datetime.strptime(day, "%Y-%m-%d")
        except ValueError:
            raise typer.BadParameter(f"'{day}' is not a day like 2026-11-22", param_hint="--day") from None
    with _client(url, token) as client:
        data = client.report(day)
    if json_out:
        console.print_json(json.dumps(data))
        return
    console.print(report_table(data, f"report for {data['day']} (UTC)"))


COMMANDS: dict[str, Callable[..., None]] = {
    "status": status,
    "watch": watch,
    "submit": submit,
    "import": import_,
    "launch": launch,
    "abort": abort,
    "ground": ground,
    "unground": unground,
    "close": close,
    "open": open_,
    "report": report,
}


def register(app: typer.Typer) -> None:
    """Add every operator command to `app` under its name."""
    for name, fn in COMMANDS.items():
        app.command(name)(fn)
