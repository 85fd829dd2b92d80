"""Packages from CSV files: the operator's and the integrator's bulk intake.

Columns (header names, case-insensitive):
- ``key`` (required): the client's idempotency key, unique per package.
- weight: ``weight_kg`` or ``weight_lb``, or ``weight`` with ``weight_unit`` (``kg``/``lb``) — one of them.
- destination: ``lat`` and ``lon`` (or ``dest_lat``/``dest_lon``, ``latitude``/``longitude``), in
  decimal degrees.
- optional: ``deadline``, ``earliest`` (ISO 8601 with a time zone), ``priority`` (0-9), ``length_m``,
  ``width_m``, ``height_m``, ``recipient``, ``note``.
A file is read whole before anything is used: one bad row fails the file with an `InputError` naming the
row and field, so a half-imported file never happens.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from controller.errors import InputError
from controller.packages import PackageIn, describe_validation_error

_ALIASES: dict[str, str] = {
    "key": "key",
    "id": "key",
    "weight": "weight",
    "weight_unit": "weight_unit",
    "unit": "weight_unit",
    "weight_kg": "weight_kg",
    "weight_lb": "weight_lb",
    "lat": "dest_lat",
    "latitude": "dest_lat",
    "dest_lat": "dest_lat",
    "lon": "dest_lon",
    "lng": "dest_lon",
    "longitude": "dest_lon",
    "dest_lon": "dest_lon",
    "deadline": "deadline",
    "earliest": "earliest",
    "priority": "priority",
    "length_m": "length_m",
    "width_m": "width_m",
    "height_m": "height_m",
    "recipient": "recipient",
    "note": "note",
}
_OPTIONAL = ("deadline", "earliest", "priority", "length_m", "width_m", "height_m", "recipient", "note")


def read_packages_csv(path: str | Path) -> list[PackageIn]:
    """Read and validate a whole packages CSV file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"file {path} does not exist", field="file") from exc
    return parse_packages_csv(text)


def parse_packages_csv(text: str) -> list[PackageIn]:
    """Validate CSV text into packages; rows are numbered as a spreadsheet shows them (header = row 1)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("the CSV file is empty: it needs a header row and at least one package") from None
    columns = _columns(header)
    packages: list[PackageIn] = []
    keys: dict[str, int] = {}
    for row_no, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise InputError(f"has {len(cells)} cells but the header has {len(header)} columns", row=row_no)
        package = _package(dict(zip(columns, (c.strip() for c in cells), strict=True)), row_no)
        if package.key in keys:
            first = keys[package.key]
            if packages[first].content_hash() != package.content_hash():
                raise InputError(
                    f"key '{package.key}' is used again with different content (first on row {first + 2})",
                    field="key",
                    row=row_no,
                )
            continue  # an exact repeat: idempotent, keep one
        keys[package.key] = len(packages)
        packages.append(package)
    if not packages:
        raise InputError("the CSV file has a header but no packages")
    return packages


def _columns(header: Iterable[str]) -> list[str]:
    columns: list[str] = []
    for name in header:
        canonical = _ALIASES.get(name.strip().lower())
        if canonical is None:
            raise InputError(
                f"unknown column '{name}' (known: {', '.join(sorted(set(_ALIASES)))})", field=name
            )
        if canonical in columns:
            raise InputError(f"column '{name}' appears twice", field=name)
        columns.append(canonical)
    present = set(columns)
    missing = [c for c in ("key", "dest_lat", "dest_lon") if c not in present]
    weights = present & {"weight", "weight_kg", "weight_lb"}
    if not weights:
        missing.append("weight_kg or weight_lb (or weight + weight_unit)")
    if missing:
        raise InputError(f"missing column(s): {', '.join(missing)}", field=missing[0])
    if len(weights) > 1:
        raise InputError(f"give the weight once, not as {' and '.join(sorted(weights))}", field="weight")
    if "weight_unit" in present and "weight" not in present:
        raise InputError("weight_unit needs a 'weight' column", field="weight_unit")
    return columns


def _package(cells: dict[str, str], row_no: int) -> PackageIn:
    data: dict[str, object] = {
        "key": cells["key"],
        "dest_lat": cells["dest_lat"],
        "dest_lon": cells["dest_lon"],
    }
    if "weight_kg" in cells:
        data.update(weight=cells["weight_kg"], weight_unit="kg")
    elif "weight_lb" in cells:
        data.update(weight=cells["weight_lb"], weight_unit="lb")
    else:
        data.update(weight=cells["weight"], weight_unit=cells.get("weight_unit") or "kg")
    for name in _OPTIONAL:
        if cells.get(name):
            data[name] = cells[name]
    try:
        return PackageIn.model_validate(data)
    except ValidationError as exc:
        field, reason = describe_validation_error(exc)[0]
        raise InputError(reason, field=field, row=row_no) from exc
