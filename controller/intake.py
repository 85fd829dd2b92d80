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

Bytes are decoded by a fixed rule (`decode_csv`), not guessed: UTF-8 (with or without a byte-order mark),
UTF-16 with its mark, else Windows-1252 (what Excel writes on Windows), and the reader says which it used.
A `weight` column needs its `weight_unit` in every row: a blank unit is refused, never taken as kg. A deadline
already past is refused (the planner would hand the package to a van as hopelessly late) unless the caller
says late packages are expected (`allow_late`).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from controller.errors import InputError
from controller.packages import PackageIn, describe_validation_error, late_reason

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


@dataclass(frozen=True)
class PackagesFile:
    """A validated packages CSV: its packages in file order, the row of each, and how it was decoded."""

    packages: list[PackageIn]
    rows: list[int]  # spreadsheet row numbers (header = row 1), one per package
    encoding: str  # "UTF-8", "UTF-8 with BOM", "UTF-16" or "Windows-1252"

    @property
    def encoding_note(self) -> str | None:
        """What to tell the reader when the encoding was a fallback, not marked or valid UTF-8."""
        return "not UTF-8; read as Windows-1252" if self.encoding == "Windows-1252" else None


def read_packages_csv(
    path: str | Path, *, now: datetime | None = None, allow_late: bool = False
) -> list[PackageIn]:
    """Read and validate a whole packages CSV file (see `load_packages_csv`)."""
    return load_packages_csv(path, now=now, allow_late=allow_late).packages


def load_packages_csv(
    path: str | Path, *, now: datetime | None = None, allow_late: bool = False
) -> PackagesFile:
    """Read, decode and validate a whole packages CSV file.

    With `now`, a deadline before it is refused naming the row, unless `allow_late`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"file {path} does not exist", field="file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a directory, not a CSV file", field="file") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", field="file") from exc
    text, encoding = decode_csv(data, name=str(path))
    packages, rows = _parse(text, now=now, allow_late=allow_late)
    return PackagesFile(packages, rows, encoding)


# Written by hand rather than with charset-normalizer: a packages file is mostly ASCII digits, and on such
# short text a statistical guess can pick a different code page from run to run of the same bytes. The
# rule below is fixed, covers what spreadsheets actually save, and refuses the rest by name.
def decode_csv(data: bytes, *, name: str = "the file") -> tuple[str, str]:
    """(text, encoding name): UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252; or `InputError`."""
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data[len(codecs.BOM_UTF8) :], "utf-8", "UTF-8 with BOM", name), "UTF-8 with BOM"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(data, "utf-16", "UTF-16", name), "UTF-16"
    if b"\x00" in data:
        raise InputError(
            f"{name} holds NUL bytes: it is not a text CSV (UTF-16 without a byte-order mark, or a "
            "spreadsheet's own format?); save it as 'CSV UTF-8'",
            field="file",
        )
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    return _decode(data, "cp1252", "Windows-1252", name), "Windows-1252"


def _decode(data: bytes, codec: str, label: str, name: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        tried = "neither UTF-8 nor Windows-1252" if codec == "cp1252" else f"not valid {label}"
        raise InputError(
            f"{name} is {tried} text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as 'CSV UTF-8'",
            field="file",
        ) from None


def parse_packages_csv(
    text: str, *, now: datetime | None = None, allow_late: bool = False
) -> list[PackageIn]:
    """Validate CSV text into packages; rows are numbered as a spreadsheet shows them (header = row 1)."""
    return _parse(text, now=now, allow_late=allow_late)[0]


def _parse(text: str, *, now: datetime | None, allow_late: bool) -> tuple[list[PackageIn], list[int]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("the CSV file is empty: it needs a header row and at least one package") from None
    except csv.Error as exc:
        raise InputError(f"is not readable CSV: {exc}", row=1) from None
    columns = _columns(header)
    packages: list[PackageIn] = []
    rows: list[int] = []
    keys: dict[str, int] = {}
    row_no = 1
    try:
        for row_no, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise InputError(
                    f"has {len(cells)} cells but the header has {len(header)} columns", row=row_no
                )
            package = _package(dict(zip(columns, (c.strip() for c in cells), strict=True)), row_no)
            if package.key in keys:
                first = keys[package.key]
                if packages[first].content_hash() != package.content_hash():
                    raise InputError(
                        f"key '{package.key}' is used again with different content "
                        f"(first on row {rows[first]})",
                        field="key",
                        row=row_no,
                    )
                continue  # an exact repeat: idempotent, keep one
            if now is not None and not allow_late:
                late = late_reason(package, now)
                if late is not None:
                    raise InputError(f"{late}; fix it, or pass --allow-late", field="deadline", row=row_no)
            keys[package.key] = len(packages)
            packages.append(package)
            rows.append(row_no)
    except csv.Error as exc:
        raise InputError(f"is not readable CSV: {exc}", row=row_no + 1) from None
    if not packages:
        raise InputError("the CSV file has a header but no packages")
    return packages, rows


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
    if "weight" in present and "weight_unit" not in present:
        raise InputError(
            "a 'weight' column needs a 'weight_unit' column (kg or lb), or name it weight_kg or weight_lb",
            field="weight_unit",
        )
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
        if not cells["weight_unit"]:
            reason = "weight_unit is blank: write kg or lb (a weight without its unit is not guessed)"
            raise InputError(reason, field="weight_unit", row=row_no)
        data.update(weight=cells["weight"], weight_unit=cells["weight_unit"])
    for name in _OPTIONAL:
        if cells.get(name):
            data[name] = cells[name]
    try:
        return PackageIn.model_validate(data)
    except ValidationError as exc:
        field, reason = describe_validation_error(exc)[0]
        raise InputError(reason, field=field, row=row_no) from exc
