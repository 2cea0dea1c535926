"""Bulk upserts on natural keys, counted: the one way every domain writes batches of rows."""

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import JSONB

# Rows per COPY and upsert statement: bounds the staging table, not correctness.
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
    rows: Sequence[Mapping[str, Any]] | Sequence[tuple[Any, ...]],
    key: Sequence[str],
    extra_set_sql: Mapping[str, str] | None = None,
    insert_only: Sequence[str] = (),
    inserted_keys: list[Any] | None = None,
    written_ids: dict[Any, Any] | None = None,
    columns: Sequence[str] | None = None,
) -> WriteCounts:
    """INSERT ... ON CONFLICT (key) DO UPDATE, only where a value differs. Columns in
    `insert_only` are written for new rows and never overwritten (choices people make later);
    `extra_set_sql` adds SQL assignments to the update; `inserted_keys` collects the last key
    column of each row that was new; `written_ids` maps that key column to the row's `id` for
    every row inserted or changed (unchanged rows are not returned by PostgreSQL). `columns`
    (default: the keys of the first row) are the ones written; rows may hold others, or be
    tuples of exactly these columns' values (then `columns` is required). When every
    column is part of the key there is nothing to update: rows already stored are left alone
    (ON CONFLICT DO NOTHING) and only new ones are counted.

    The rows are COPYed into a session-local staging table and upserted from there in one
    statement: COPY encodes rows in psycopg's C code, where array parameters were encoded value
    by value in Python (the largest cost of a sync), and the statement text never changes with
    the number of rows. Everything happens inside the caller's transaction."""
    counts = WriteCounts()
    if not rows:
        return counts
    values_of: Callable[[Any], Sequence[Any]] | None = None  # None: rows are tuples to write
    if isinstance(rows[0], tuple):
        if columns is None:
            raise ValueError(f"{table.name}: rows given as tuples need `columns`")
        columns = tuple(columns)
    else:
        columns = tuple(columns or rows[0])
        # One C call a row; itemgetter of a single column returns the value, not a tuple.
        values_of = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    # Keys and ids cost a value each to send and decode (a UUID, in Python): only when asked.
    returning_rows = inserted_keys is not None or written_ids is not None
    stage, create_stage, statement = _upsert_sql(
        table,
        columns,
        tuple(key),
        tuple(insert_only),
        tuple(sorted((extra_set_sql or {}).items())),
        returning_rows,
    )
    driver_connection = connection.connection.driver_connection
    assert isinstance(driver_connection, psycopg.Connection)
    with driver_connection.cursor() as cursor:
        cursor.execute(create_stage)
        binary_types = _binary_copy_types(connection, cursor, stage)
        json_columns = (
            [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSONB)]
            if binary_types is None
            else []  # the binary jsonb writer takes plain dicts and lists
        )
        copy_sql = f"COPY {stage} ({', '.join(columns)}) FROM STDIN"
        if binary_types is not None:
            copy_sql += " (FORMAT BINARY)"
        for start in range(0, len(rows), UPSERT_CHUNK):
            with cursor.copy(copy_sql) as copy:
                if binary_types is not None:
                    copy.set_types(binary_types)
                for row in rows[start : start + UPSERT_CHUNK]:
                    values = cast(Sequence[Any], row) if values_of is None else values_of(row)
                    if json_columns:
                        values = list(values)
                        for i in json_columns:
                            values[i] = _json(values[i])
                    copy.write_row(values)
            cursor.execute(statement)  # it also empties the staging table
            if not returning_rows:
                inserted_count, updated_count = cursor.fetchone() or (0, 0)
                counts.inserted += inserted_count
                counts.updated += updated_count
                continue
            for inserted, last_key, row_id in cursor.fetchall():
                if written_ids is not None:
                    written_ids[last_key] = row_id
                if inserted:
                    counts.inserted += 1
                    if inserted_keys is not None:
                        inserted_keys.append(last_key)
                else:
                    counts.updated += 1
    return counts


def _binary_copy_types(
    connection: Connection, cursor: psycopg.Cursor[Any], stage: str
) -> list[int] | None:
    """The staging table's column types when psycopg can write all of them in COPY's binary
    format, else None (text format). Binary rows cost less than half as much to encode, and
    PostgreSQL need not parse timestamps, UUIDs and numbers from text; a type without a binary
    writer (an enum, say) keeps the whole COPY in text. Looked up once per database connection:
    the types of a staging table never change."""
    known: dict[str, list[int] | None] = connection.info.setdefault("toban_copy_types", {})
    if stage not in known:
        cursor.execute(
            "SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (stage,),
        )
        oids = [int(oid) for (oid,) in cursor.fetchall()]
        try:
            for oid in oids:
                cursor.adapters.get_dumper_by_oid(oid, psycopg.pq.Format.BINARY)
        except psycopg.ProgrammingError:
            known[stage] = None
        else:
            known[stage] = oids
    return known[stage]


def _json(value: Any) -> Any:
    return None if value is None else Jsonb(value)


@lru_cache(maxsize=64)
def _upsert_sql(
    table: Table,
    columns: tuple[str, ...],
    key: tuple[str, ...],
    insert_only: tuple[str, ...],
    extra_set_sql: tuple[tuple[str, str], ...],
    returning_rows: bool,
) -> tuple[str, str, str]:
    """(staging table, its CREATE statement, the upsert from it)."""
    names = ", ".join(columns)
    stage = f"toban_stage_{table.name}_{zlib.crc32(names.encode()):08x}"
    # Temporary: private to the session, gone with it; created again after a rollback.
    create = (
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
        f"SELECT {names} FROM {table.name} WITH NO DATA"
    )
    compared = [c for c in columns if c not in key and c not in insert_only]
    assignments = [f"{c} = EXCLUDED.{c}" for c in compared] + [
        f"{c} = {expression}" for c, expression in extra_set_sql
    ]
    if compared:
        on_conflict = (
            f"DO UPDATE SET {', '.join(assignments)} "
            f"WHERE ({', '.join(f'{table.name}.{c}' for c in compared)}) IS DISTINCT FROM "
            f"({', '.join(f'EXCLUDED.{c}' for c in compared)})"
        )
    elif extra_set_sql:
        raise ValueError(f"{table.name}: extra_set_sql needs a column to compare")
    else:
        on_conflict = "DO NOTHING"
    # The staged rows are deleted and inserted in one statement, saving a round trip per call.
    # DELETE, not TRUNCATE (a new file per call); ON COMMIT DELETE ROWS then empties the table
    # in place, so its dead rows never outlive the transaction.
    insert = (
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM staged "
        f"ON CONFLICT ({', '.join(key)}) {on_conflict} RETURNING (xmax = 0) AS inserted"
    )
    staged = f"WITH staged AS (DELETE FROM {stage} RETURNING {names})"
    if returning_rows:
        return stage, create, f"{staged} {insert}, {table.name}.{key[-1]}, {table.name}.id"
    # Only counts wanted: one row back, not one a written row to send and decode.
    return (
        stage,
        create,
        f"{staged}, written AS ({insert}) SELECT count(*) FILTER (WHERE inserted), "
        "count(*) FILTER (WHERE NOT inserted) FROM written",
    )
