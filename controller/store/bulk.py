"""Many rows in one statement, with SQLAlchemy's per-row work done once per statement shape.

`conn.execute(insert(table), rows)` builds each row's parameters through the compiled statement, which
measured about 40 µs a row for the packages table: with two inserts and an update per package, the store
was the largest cost of intake. The hot writes (new packages, events, a tick's moves) come here instead:
the statement is compiled once per dialect and shape, each parameter's bind processor is looked up once
(the same functions SQLAlchemy would call, so UTC datetimes and JSON are stored exactly as elsewhere), and
the rows go to the driver in one `exec_driver_sql` executemany, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Table, bindparam, insert, update
from sqlalchemy.sql.dml import DMLWhereBase, ValuesBase

__all__ = ["insert_rows", "update_rows"]


@dataclass(frozen=True)
class _Statement:
    sql: str
    names: tuple[str, ...]  # parameter names, in the driver's order when it is positional
    processors: tuple[Callable[[Any], Any] | None, ...]
    positional: bool

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]] | list[dict[str, Any]]:
        """Every row's parameters, a column at a time: one `map` per processor, not a call per cell."""
        pick = itemgetter(*self.names)
        cells = [pick(row) for row in rows] if len(self.names) > 1 else [(pick(row),) for row in rows]
        columns = [
            list(values) if proc is None else list(map(proc, values))
            for values, proc in zip(zip(*cells, strict=True), self.processors, strict=True)
        ]
        if self.positional:
            return list(zip(*columns, strict=True))
        return [dict(zip(self.names, values, strict=True)) for values in zip(*columns, strict=True)]


_compiled: dict[tuple[str, str, tuple[str, ...], str], _Statement] = {}


def _compile(conn: Connection, statement: ValuesBase | DMLWhereBase, columns: Sequence[str]) -> _Statement:
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
    processors = tuple(_processor(compiled.binds[n].type, dialect) for n in names)
    return _Statement(str(compiled), names, processors, bool(compiled.positional))


def _processor(kind: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """The bind processor SQLAlchemy would use; for SQLite's JSON, the engine's serializer itself.

    SQLAlchemy's JSON processor wraps the serializer to turn its `JSON.NULL` and `null()` markers into SQL
    values; rows written here hold plain values only, and the wrapper was half the cost of a JSON cell.
    """
    impl = kind.dialect_impl(dialect)
    serializer = getattr(dialect, "_json_serializer", None)
    if dialect.name == "sqlite" and isinstance(impl, JSON) and serializer is not None:
        return serializer  # type: ignore[no-any-return]
    return impl.bind_processor(dialect)  # type: ignore[no-any-return]


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT every row (all with the same keys) in one executemany.

    A column that is None in every row is left out of the statement, so the database stores its NULL
    without a parameter: SQLite's driver passes each None through its adapter lookup (two failed
    attribute lookups a value), and a new package has about ten empty columns.
    """
    if not rows:
        return
    columns = tuple(c for c in rows[0] if not _all_null(table, c, rows))
    key = (conn.dialect.name, table.name, columns, "insert")
    statement = _compiled.get(key)
    if statement is None:
        statement = _compiled[key] = _compile(conn, insert(table), columns)
    conn.exec_driver_sql(statement.sql, statement.params(rows))


def _all_null(table: Table, name: str, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether every row has None for a column that stores plain NULL when left out."""
    if rows[0][name] is not None or name not in _plain_nullable(table):
        return False
    return list(map(itemgetter(name), rows)).count(None) == len(rows)


_nullable: dict[Table, frozenset[str]] = {}


def _plain_nullable(table: Table) -> frozenset[str]:
    """Columns where leaving the value out is the same as sending None: nullable, no default, not JSON
    (None in a JSON column is the JSON text `null`, not SQL NULL)."""
    found = _nullable.get(table)
    if found is None:
        found = _nullable[table] = frozenset(
            c.name
            for c in table.columns
            if c.nullable
            and c.default is None
            and c.server_default is None
            and not c.primary_key
            and not isinstance(c.type, JSON)
        )
    return found


def update_rows(conn: Connection, table: Table, key_column: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE one row per item, found by `key_column`; every item sets the same other columns."""
    if not rows:
        return
    columns = tuple(c for c in rows[0] if c != key_column)
    key = (conn.dialect.name, table.name, (key_column, *columns), "update")
    statement = _compiled.get(key)
    if statement is None:
        sql = (
            update(table)
            .where(table.c[key_column] == bindparam(f"k_{key_column}"))
            .values({c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns})
        )
        statement = _compiled[key] = _compile(conn, sql, ())
    renamed = [{f"k_{key_column}": row[key_column], **{f"v_{c}": row[c] for c in columns}} for row in rows]
    conn.exec_driver_sql(statement.sql, statement.params(renamed))
