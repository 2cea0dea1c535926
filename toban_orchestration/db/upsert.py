"""Bulk upserts on natural keys, counted: the one way every domain writes batches of rows."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Table, TextClause, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

# Rows per upsert statement (each column is one array parameter, so this bounds memory only).
UPSERT_CHUNK = 5000


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    def __iadd__(self, other: "WriteCounts") -> "WriteCounts":
        self.inserted += other.inserted
        self.updated += other.updated
        self.deleted += other.deleted
        return self


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str],
    extra_set_sql: Mapping[str, str] | None = None,
    insert_only: Sequence[str] = (),
    inserted_keys: list[Any] | None = None,
) -> WriteCounts:
    """INSERT ... ON CONFLICT (key) DO UPDATE, only where a value differs. Columns in
    `insert_only` are written for new rows and never overwritten (choices people make later);
    `extra_set_sql` adds SQL assignments to the update; `inserted_keys` collects the last key
    column of each row that was new.

    The rows travel as one array per column through `unnest`: the statement text never changes
    with the number of rows, so neither SQLAlchemy nor psycopg re-parses it, and a whole page is
    one round trip."""
    counts = WriteCounts()
    if not rows:
        return counts
    columns = tuple(rows[0])
    statement = _upsert_statement(
        table,
        columns,
        tuple(key),
        tuple(insert_only),
        tuple(sorted((extra_set_sql or {}).items())),
    )
    json_columns = {c for c in columns if isinstance(table.c[c].type, JSONB)}
    for start in range(0, len(rows), UPSERT_CHUNK):
        chunk = rows[start : start + UPSERT_CHUNK]
        params = {
            f"p{i}": [
                _json(row[column]) if column in json_columns else row[column] for row in chunk
            ]
            for i, column in enumerate(columns)
        }
        for inserted, last_key in connection.execute(statement, params):
            if inserted:
                counts.inserted += 1
                if inserted_keys is not None:
                    inserted_keys.append(last_key)
            else:
                counts.updated += 1
    return counts


def _json(value: Any) -> Any:
    return None if value is None else Jsonb(value)


@lru_cache(maxsize=64)
def _upsert_statement(
    table: Table,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    insert_only: tuple[str, ...],
    extra_set_sql: tuple[tuple[str, str], ...],
) -> TextClause:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    arrays = ", ".join(
        f"CAST(:p{i} AS {table.c[column].type.compile(dialect=dialect)}[])"
        for i, column in enumerate(columns)
    )
    compared = [c for c in columns if c not in key and c not in insert_only]
    assignments = [f"{c} = EXCLUDED.{c}" for c in compared] + [
        f"{c} = {expression}" for c, expression in extra_set_sql
    ]
    names = ", ".join(columns)
    return text(
        f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(assignments)} "
        f"WHERE ({', '.join(f'{table.name}.{c}' for c in compared)}) IS DISTINCT FROM "
        f"({', '.join(f'EXCLUDED.{c}' for c in compared)}) "
        f"RETURNING (xmax = 0), {table.name}.{key[-1]}"
    )
