"""`db.upsert`, the one bulk write: counts, binary and text COPY, and insert-if-absent."""

from typing import Any

import pytest
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from toban_orchestration.db.enums import ResourceType
from toban_orchestration.db.models import ServiceResource, SlackReaction
from toban_orchestration.db.upsert import WriteCounts, upsert
from toban_orchestration_tests.factories import add_slack_integration, build_graph

resource_table: Table = ServiceResource.__table__  # type: ignore[assignment]
reaction_table: Table = SlackReaction.__table__  # type: ignore[assignment]


def test_rows_with_an_enum_column_are_written_in_text_and_counted(db_session: Session) -> None:
    """`resource_type` is a PostgreSQL enum, which psycopg cannot write in binary: the COPY
    falls back to text, and counts and values are the same as in binary."""
    _, integration = add_slack_integration(db_session, "T0ENUM", team_name="E", team_slug="e")
    connection = db_session.connection()

    def rows(name_of_b: str) -> list[dict[str, Any]]:
        return [
            {
                "integration_id": integration.id,
                "resource_type": ResourceType.SLACK_CHANNEL,
                "external_id": external_id,
                "name": name,
                "resource_metadata": {"type": "public", "n": [1, 2]},
            }
            for external_id, name in (("C1", "general"), ("C2", name_of_b))
        ]

    key = ("integration_id", "resource_type", "external_id")
    assert upsert(connection, resource_table, rows("random"), key) == WriteCounts(inserted=2)
    assert upsert(connection, resource_table, rows("random"), key) == WriteCounts()
    assert upsert(connection, resource_table, rows("renamed"), key) == WriteCounts(updated=1)
    stored = connection.execute(
        select(resource_table.c.external_id, resource_table.c.name, resource_table.c.resource_type)
        .where(resource_table.c.integration_id == integration.id)
        .order_by(resource_table.c.external_id)
    ).all()
    assert stored == [
        ("C1", "general", ResourceType.SLACK_CHANNEL),
        ("C2", "renamed", ResourceType.SLACK_CHANNEL),
    ]
    formats = connection.info["toban_copy_types"]  # looked up once, kept per connection
    assert [types for stage, types in formats.items() if "service_resource" in stage] == [None]
    metadata = connection.execute(select(resource_table.c.resource_metadata)).scalars().all()
    assert metadata == [{"type": "public", "n": [1, 2]}] * 2


def test_rows_whose_columns_are_all_key_are_inserted_once(db_session: Session) -> None:
    graph = build_graph(db_session)
    connection = db_session.connection()
    key = ("message_id", "user_id", "emoji_name")
    rows = [
        {"message_id": graph.reply.id, "user_id": graph.user.id, "emoji_name": "tada"},
        {"message_id": graph.reply.id, "user_id": graph.other_user.id, "emoji_name": "tada"},
    ]
    inserted: list[Any] = []
    counts = upsert(connection, reaction_table, rows, key, inserted_keys=inserted)
    assert counts == WriteCounts(inserted=2)
    assert inserted == ["tada", "tada"]
    formats = connection.info["toban_copy_types"]
    assert [len(types) for stage, types in formats.items() if "slack_reaction" in stage] == [3]
    # Already there, together with a new one: only the new one is written and counted.
    extra = {"message_id": graph.parent.id, "user_id": graph.user.id, "emoji_name": "eyes"}
    assert upsert(connection, reaction_table, [*rows, extra], key) == WriteCounts(inserted=1)
    stored = connection.execute(
        select(reaction_table.c.emoji_name).where(
            reaction_table.c.message_id.in_([graph.reply.id, graph.parent.id])
        )
    ).scalars()
    assert sorted(stored) == ["eyes", "pray", "tada", "tada"]  # "pray": the graph's own


def test_extra_assignments_need_a_compared_column(db_session: Session) -> None:
    graph = build_graph(db_session)
    row = {"message_id": graph.reply.id, "user_id": graph.user.id, "emoji_name": "x"}
    with pytest.raises(ValueError, match="slack_reaction"):
        upsert(
            db_session.connection(),
            reaction_table,
            [row],
            ("message_id", "user_id", "emoji_name"),
            extra_set_sql={"emoji_name": "'y'"},
        )


def test_tuple_rows_are_written_in_the_order_of_columns(db_session: Session) -> None:
    graph = build_graph(db_session)
    connection = db_session.connection()
    columns = ("emoji_name", "user_id", "message_id")  # not the table's order
    rows = [("rocket", graph.user.id, graph.reply.id), ("rocket", graph.user.id, graph.parent.id)]
    key = ("message_id", "user_id", "emoji_name")
    assert upsert(connection, reaction_table, rows, key, columns=columns) == WriteCounts(2)
    stored = connection.execute(
        select(reaction_table.c.message_id, reaction_table.c.user_id).where(
            reaction_table.c.emoji_name == "rocket"
        )
    ).all()
    assert sorted(stored) == sorted((message, user) for _, user, message in rows)
    with pytest.raises(ValueError, match="slack_reaction: rows given as tuples need `columns`"):
        upsert(connection, reaction_table, rows, key)


def test_counts_are_the_same_whether_or_not_keys_are_returned(db_session: Session) -> None:
    """Without `inserted_keys` or `written_ids` PostgreSQL sends back the two counts only; with
    them, a row per written row. Both count alike."""
    _, integration = add_slack_integration(db_session, "T0CNT", team_name="C", team_slug="c")
    connection = db_session.connection()
    key = ("integration_id", "resource_type", "external_id")

    def rows(prefix: str, names: str) -> list[dict[str, Any]]:
        return [
            {
                "integration_id": integration.id,
                "resource_type": ResourceType.SLACK_CHANNEL,
                "external_id": f"{prefix}{n}",
                "name": name,
            }
            for n, name in enumerate(names)
        ]

    assert upsert(connection, resource_table, rows("A", "abc"), key) == WriteCounts(inserted=3)
    written: dict[Any, Any] = {}
    assert upsert(
        connection, resource_table, rows("B", "abc"), key, written_ids=written
    ) == WriteCounts(inserted=3)
    assert sorted(written) == ["B0", "B1", "B2"]
    # One changed and one new in each: the unchanged row is neither counted nor returned.
    assert upsert(connection, resource_table, rows("A", "axcd"), key) == WriteCounts(1, 1)
    written.clear()
    inserted: list[Any] = []
    counts = upsert(
        connection, resource_table, rows("B", "axcd"), key, written_ids=written,
        inserted_keys=inserted,
    )  # fmt: skip
    assert counts == WriteCounts(1, 1)
    assert (sorted(written), inserted) == (["B1", "B3"], ["B3"])
