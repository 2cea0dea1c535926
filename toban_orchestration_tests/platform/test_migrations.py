"""Alembic against a real database: the baseline builds exactly what the models describe."""

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Connection, Engine, inspect, text

from toban_orchestration.db import migrations
from toban_orchestration.db.enums import MessageKind
from toban_orchestration.db.models import Base
from toban_orchestration.db.updated_at import FUNCTION_NAME, trigger_name
from toban_orchestration.slack import normalize

# SCHEMA.md's lists, under the names our naming convention gives them.
SCHEMA_UNIQUE_CONSTRAINTS = {
    ("team", "uq_team_slug"),
    ("team_member", "uq_team_member_team_id_user_id"),
    ("integration", "uq_integration_owner_team_id_workspace_id_service_type"),
    ("integration_share", "uq_integration_share_integration_id_team_id"),
    ("service_resource", "uq_service_resource_integration_id_resource_type_external_id"),
    ("resource_access", "uq_resource_access_resource_id_team_id"),
    ("slack_workspace", "uq_slack_workspace_slack_id"),
    ("slack_channel", "uq_slack_channel_workspace_id_slack_id"),
    ("slack_user", "uq_slack_user_workspace_id_slack_id"),
    ("slack_reaction", "uq_slack_reaction_message_id_user_id_emoji_name"),
    ("slack_channel_analysis", "uq_slack_channel_analysis_analysis_id_channel_id"),
    # Added by the foundation issue: a message is identified by (channel, ts).
    ("slack_message", "uq_slack_message_channel_id_slack_ts"),
    ("slack_sync_day", "uq_slack_sync_day_channel_id_day"),
}
SCHEMA_PERFORMANCE_INDEXES = {
    # (table, columns in order) - by columns, because the unique constraint's index serves the
    # first one.
    ("slack_message", ("channel_id", "slack_ts")),
    ("slack_message", ("user_id", "slack_ts")),
    ("slack_message", ("message_datetime",)),
    ("slack_message", ("thread_ts",)),
}
# Every foreign key's ON DELETE rule, decided on purpose (docs/data-model.md).
DELETE_RULES = {
    ("team_member", "team_id"): "CASCADE",
    ("integration", "owner_team_id"): "RESTRICT",
    ("integration_credential", "integration_id"): "CASCADE",
    ("service_resource", "integration_id"): "CASCADE",
    ("integration_share", "integration_id"): "CASCADE",
    ("integration_share", "team_id"): "CASCADE",
    ("resource_access", "resource_id"): "CASCADE",
    ("resource_access", "team_id"): "CASCADE",
    ("integration_event", "integration_id"): "SET NULL",
    ("integration_event", "affected_team_id"): "SET NULL",
    ("slack_workspace", "team_id"): "RESTRICT",
    ("slack_channel", "workspace_id"): "CASCADE",
    ("slack_user", "workspace_id"): "CASCADE",
    ("slack_message", "channel_id"): "CASCADE",
    ("slack_message", "user_id"): "SET NULL",
    ("slack_message", "parent_id"): "SET NULL",
    ("slack_reaction", "message_id"): "CASCADE",
    ("slack_reaction", "user_id"): "CASCADE",
    ("slack_analysis", "workspace_id"): "CASCADE",
    ("slack_analysis_channels", "analysis_id"): "CASCADE",
    ("slack_analysis_channels", "channel_id"): "CASCADE",
    ("slack_contribution", "analysis_id"): "CASCADE",
    ("slack_contribution", "user_id"): "CASCADE",
    ("slack_contribution", "channel_id"): "CASCADE",
    ("slack_channel_analysis", "analysis_id"): "CASCADE",
    ("slack_channel_analysis", "channel_id"): "CASCADE",
    ("slack_sync_day", "channel_id"): "CASCADE",
}


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_head_on_an_empty_database_matches_the_models(empty_engine: Engine) -> None:
    assert _tables(empty_engine) == set()
    migrations.upgrade(empty_engine)
    assert migrations.current_revision(empty_engine) == migrations.head_revision()
    assert _tables(empty_engine) == {*Base.metadata.tables, migrations.VERSION_TABLE}
    assert len(Base.metadata.tables) == 19  # SCHEMA.md's 17, slack_sync_day, slack_event_inbox
    assert migrations.schema_differences(empty_engine) == []


def test_the_project_never_writes_dagsters_alembic_version_table(migrated_engine: Engine) -> None:
    assert "alembic_version" not in _tables(migrated_engine)
    with migrated_engine.connect() as connection:
        stored = connection.execute(
            text(f"SELECT version_num FROM {migrations.VERSION_TABLE}")
        ).scalar_one()
    assert stored == migrations.head_revision()


def test_downgrade_base_removes_everything_and_upgrade_head_rebuilds_it(
    migrated_engine: Engine,
) -> None:
    migrations.downgrade(migrated_engine, "base")
    assert _tables(migrated_engine) == {migrations.VERSION_TABLE}
    with migrated_engine.connect() as connection:
        leftovers = connection.execute(
            text(
                "SELECT typname FROM pg_type WHERE typtype = 'e' "
                "UNION ALL SELECT proname FROM pg_proc WHERE proname = :function"
            ),
            {"function": FUNCTION_NAME},
        ).all()
    assert leftovers == []
    assert migrations.current_revision(migrated_engine) is None

    migrations.upgrade(migrated_engine)
    assert migrations.schema_differences(migrated_engine) == []


@pytest.mark.parametrize(
    "drift",
    [
        "ALTER TABLE slack_channel ALTER COLUMN purpose TYPE varchar(255)",
        "ALTER TABLE slack_message DROP CONSTRAINT uq_slack_message_channel_id_slack_ts",
        "DROP INDEX ix_slack_message_thread_ts",
        "ALTER TABLE slack_user ALTER COLUMN is_bot DROP NOT NULL",
        "ALTER TABLE team ADD COLUMN stray integer",
    ],
)
def test_the_comparison_reports_a_database_that_drifted(
    migrated_engine: Engine, drift: str
) -> None:
    with migrated_engine.begin() as connection:
        connection.execute(text(drift))
    assert migrations.schema_differences(migrated_engine) != []


def test_schema_lists_its_unique_constraints_and_indexes(migrated_engine: Engine) -> None:
    inspector = inspect(migrated_engine)
    unique = {
        (table, constraint["name"])
        for table in Base.metadata.tables
        for constraint in inspector.get_unique_constraints(table)
    }
    assert unique >= SCHEMA_UNIQUE_CONSTRAINTS
    with migrated_engine.connect() as connection:
        indexed = {
            (table, tuple(columns))
            for table, columns in connection.execute(
                text(
                    "SELECT t.relname, array_agg(a.attname ORDER BY k.ordinality) "
                    "FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
                    "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality) "
                    "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
                    "GROUP BY t.relname, i.indexrelid"
                )
            )
        }
    assert indexed >= SCHEMA_PERFORMANCE_INDEXES


def test_every_foreign_key_has_its_deliberate_delete_rule(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        rules = {
            (table, column): rule
            for table, column, rule in connection.execute(
                text(
                    "SELECT k.table_name, k.column_name, r.delete_rule "
                    "FROM information_schema.referential_constraints r "
                    "JOIN information_schema.key_column_usage k "
                    "ON k.constraint_name = r.constraint_name "
                    "AND k.constraint_schema = r.constraint_schema"
                )
            )
        }
    assert rules == DELETE_RULES


def test_every_table_with_updated_at_has_the_trigger(migrated_engine: Engine) -> None:
    with_updated_at = {
        table.name for table in Base.metadata.sorted_tables if "updated_at" in table.c
    }
    with migrated_engine.connect() as connection:
        triggers = set(
            connection.execute(
                text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            ).scalars()
        )
    assert len(with_updated_at) == 18
    assert {trigger_name(table) for table in with_updated_at} == triggers


def test_timestamp_columns_are_timezone_aware(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        naive = (
            connection.execute(
                text(
                    "SELECT table_name || '.' || column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'"
                )
            )
            .scalars()
            .all()
        )
    assert naive == []


def test_processes_that_upgrade_at_once_both_succeed_and_migrate_once(
    empty_engine: Engine,
) -> None:
    """Two events-receiver pods (or the CLI and the daemon) starting on a new database."""
    start = threading.Barrier(2)

    def upgrade() -> None:
        start.wait()
        migrations.upgrade(empty_engine)

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(upgrade) for _ in range(2)]:
            future.result()
    assert migrations.current_revision(empty_engine) == migrations.head_revision()
    assert migrations.schema_differences(empty_engine) == []


# 0004: slack_user.display_label and slack_message.kind, generated by the database. Each case
# is checked against the Python rules the sync and the analyses used before (normalize).
NAME_CASES: list[tuple[str | None, str | None, str | None]] = [
    (None, None, None),
    ("", "", ""),
    ("Ulla", "Ulla Berg", "ulla.berg"),
    (None, "Ulla Berg", "ulla.berg"),
    ("", "Ulla Berg", "ulla.berg"),
    (None, None, "ulla.berg"),
    ("", "", "ulla.berg"),
    ("", None, ""),
    (" ", "Ulla Berg", "ulla.berg"),  # a blank display name is still one, as in Python
    ("Jürgen 🚀", None, "j"),
    (None, "O'Brien", None),
]
SUBTYPE_CASES: list[str | None] = [
    None,
    "",
    *sorted(normalize.SYSTEM_SUBTYPES),
    "thread_broadcast",
    "bot_message",
    "me_message",
    "file_share",
    "message_changed",
    "huddle_thread",
    "Channel_Join",  # subtypes are compared exactly
    "channel_joined",
]


def _python_kind(subtype: str | None) -> str:
    notice = subtype in normalize.SYSTEM_SUBTYPES
    return (MessageKind.NOTICE if notice else MessageKind.MESSAGE).value


def _add_cases(connection: Connection, prefix: str) -> None:
    """A team, workspace and channel on first use, then one user per name case and one
    message per subtype case, all keyed by `prefix`."""
    connection.execute(
        text(
            "INSERT INTO team (name, slug) VALUES ('t', 't') ON CONFLICT DO NOTHING;"
            "INSERT INTO slack_workspace (team_id, slack_id, name) "
            "SELECT id, 'T1', 'w' FROM team ON CONFLICT DO NOTHING;"
            "INSERT INTO slack_channel (workspace_id, slack_id, name, type) "
            "SELECT id, 'C1', 'c', 'public' FROM slack_workspace ON CONFLICT DO NOTHING"
        )
    )
    for i, (display, real, name) in enumerate(NAME_CASES):
        connection.execute(
            text(
                "INSERT INTO slack_user (workspace_id, slack_id, display_name, real_name, name) "
                "SELECT id, :slack_id, :display, :real, :name FROM slack_workspace"
            ),
            {"slack_id": f"{prefix}{i}", "display": display, "real": real, "name": name},
        )
    for i, subtype in enumerate(SUBTYPE_CASES):
        connection.execute(
            text(
                "INSERT INTO slack_message (channel_id, slack_ts, message_type, subtype, "
                "message_datetime) SELECT id, :ts, 'message', :subtype, now() FROM slack_channel"
            ),
            {"ts": f"{prefix}{i}", "subtype": subtype},
        )


def _assert_columns_follow_the_python_rules(connection: Connection, prefix: str) -> None:
    labels: dict[str, str] = dict(
        connection.execute(
            text("SELECT slack_id, display_label FROM slack_user WHERE slack_id LIKE :p"),
            {"p": f"{prefix}%"},
        ).all()
    )
    assert labels == {
        f"{prefix}{i}": normalize.display_name(
            {"display_name": display, "real_name": real, "name": name}
        )
        for i, (display, real, name) in enumerate(NAME_CASES)
    }
    kinds: dict[str, str] = dict(
        connection.execute(
            text("SELECT slack_ts, kind FROM slack_message WHERE slack_ts LIKE :p"),
            {"p": f"{prefix}%"},
        ).all()
    )
    assert kinds == {
        f"{prefix}{i}": _python_kind(subtype) for i, subtype in enumerate(SUBTYPE_CASES)
    }


def test_0004_derives_kind_and_display_label_by_the_python_rules(
    migrated_engine: Engine,
) -> None:
    """Rows stored before 0004 get their columns when it runs (the backfill); rows written
    after get them on insert and follow every update (an edit, a user_change)."""
    assert "notice" not in {_python_kind(s) for s in SUBTYPE_CASES[-2:]}
    assert normalize.TOMBSTONE_SUBTYPE in normalize.SYSTEM_SUBTYPES
    migrations.downgrade(migrated_engine, "0003")
    with migrated_engine.begin() as connection:
        _add_cases(connection, "old")
    migrations.upgrade(migrated_engine)
    with migrated_engine.begin() as connection:
        _assert_columns_follow_the_python_rules(connection, "old")
        _add_cases(connection, "new")
        _assert_columns_follow_the_python_rules(connection, "new")
        connection.execute(
            text(
                "UPDATE slack_message SET subtype = CASE WHEN subtype IS NULL "
                "THEN 'channel_join' END WHERE slack_ts LIKE 'new%'"
            )
        )
        connection.execute(
            text(
                "UPDATE slack_user SET display_name = NULL, real_name = 'Renamed' "
                "WHERE slack_id LIKE 'new%'"
            )
        )
        kinds: dict[str, str] = dict(
            connection.execute(
                text("SELECT slack_ts, kind FROM slack_message WHERE slack_ts LIKE 'new%'")
            ).all()
        )
        assert set(kinds.values()) == {"notice", "message"}
        assert kinds == {
            f"new{i}": _python_kind(None if i else "channel_join")
            for i in range(len(SUBTYPE_CASES))
        }
        labels = connection.execute(
            text("SELECT DISTINCT display_label FROM slack_user WHERE slack_id LIKE 'new%'")
        ).scalars()
        assert set(labels) == {"Renamed"}
    # The models' expressions are PostgreSQL's own, so Alembic's comparison would warn on a
    # change made without a migration.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert migrations.schema_differences(migrated_engine) == []
