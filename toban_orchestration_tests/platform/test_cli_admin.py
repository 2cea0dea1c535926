"""`toban slack channels/select/deselect/configure`, `toban status`, and the schema and token
refusals of the commands, against a real database.

One synced workspace is built per module and backend (the local Slack server, two days of
messages) and each test works on its own copy (`CREATE DATABASE ... TEMPLATE`). Commands run
in-process through `cli.main` (a subprocess costs seconds of imports); one runs as a user runs it.
"""

import getpass
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlalchemy.engine import URL

from toban_orchestration.cli import main
from toban_orchestration.db import migrations
from toban_orchestration.db.engine import APP_DRIVER, DAGSTER_DRIVER, forget_app_engine
from toban_orchestration.db.enums import IntegrationStatus
from toban_orchestration.db.models import (
    Integration,
    IntegrationEvent,
    SlackAnalysis,
    SlackChannel,
    SlackEventInbox,
    SlackMessage,
    SlackWorkspace,
)
from toban_orchestration.security.tokens import TokenCipher, generate_key
from toban_orchestration.settings import get_settings
from toban_orchestration.slack.admin import SETTINGS
from toban_orchestration.slack.sync import SyncOptions
from toban_orchestration_tests.conftest import PostgresServer
from toban_orchestration_tests.fakes.slack_server import FakeSlackServer, generate_workspace
from toban_orchestration_tests.fakes.slack_server.server import SlackError as ServerRefusal
from toban_orchestration_tests.helpers import run_toban
from toban_orchestration_tests.support.web_api_sync import TOKEN, connect

TODAY = datetime.now(UTC).date()
# The generated workspace's two days are the whole backfill window: yesterday and the day before.
FIRST, LAST = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
ACTOR = f"cli:{getpass.getuser()}"


@dataclass(frozen=True)
class Template:
    server: PostgresServer
    database: str
    slack_id: str
    channel_ids: dict[str, str]
    """Channel name -> Slack id."""


@dataclass(frozen=True)
class Toban:
    """A copy of the template, and the CLI pointed at it."""

    engine: Engine
    slack_id: str
    channel_ids: dict[str, str]
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def selected(self) -> set[str]:
        with self.engine.connect() as connection:
            return set(
                connection.execute(
                    select(SlackChannel.name).where(SlackChannel.is_selected_for_analysis)
                ).scalars()
            )

    def events(self) -> list[dict[str, Any]]:
        """The details of the IntegrationEvents this OS user's commands wrote, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(IntegrationEvent.details)
                .where(IntegrationEvent.actor_user_id == ACTOR)
                .order_by(IntegrationEvent.created_at)
            ).scalars()
            return [dict(details or {}) for details in rows]

    def sync_settings(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            metadata = connection.execute(select(SlackWorkspace.workspace_metadata)).scalar_one()
        return dict(metadata["sync"])


def _admin(server: PostgresServer, statement: sql.Composed) -> None:
    with psycopg.connect(server.libpq(server.maintenance_url), autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture(scope="module")
def template(postgres_server: PostgresServer) -> Iterator[Template]:
    url = postgres_server.create_database()
    engine = create_engine(url)
    try:
        migrations.upgrade(engine)
        workspace = generate_workspace(seed=7, days=2, messages_per_channel_day=6, start=FIRST)
        with FakeSlackServer() as slack:
            connected = connect(engine, slack, workspace, TokenCipher([generate_key()]))
            connected.sync_all(FIRST, LAST)
        with engine.begin() as connection:
            rows = connection.execute(select(SlackChannel.name, SlackChannel.slack_id))
            channel_ids = {name: slack_id for name, slack_id in rows}
            selected = select(SlackChannel.name).where(SlackChannel.is_selected_for_analysis)
            # Public channels start selected only when the app can read them: not #design.
            assert set(connection.execute(selected).scalars()) == {
                "general", "random", "engineering", "old-project"
            }  # fmt: skip
            # Someone selected it by name anyway: the tests below have a selected channel that
            # cannot be read.
            connection.execute(
                update(SlackChannel)
                .where(SlackChannel.name == "design")
                .values(is_selected_for_analysis=True)
            )
    finally:
        engine.dispose()
    yield Template(postgres_server, url.database or "", connected.slack_id, channel_ids)
    postgres_server.drop_database(url)


def _point_at(monkeypatch: pytest.MonkeyPatch, app: URL, dagster: URL) -> None:
    monkeypatch.setenv("TOBAN_DATABASE_URL", app.render_as_string(hide_password=False))
    monkeypatch.setenv("TOBAN_DAGSTER_STORAGE_URL", dagster.render_as_string(hide_password=False))
    monkeypatch.setenv("TOBAN_BACKFILL_DAYS", "2")
    get_settings.cache_clear()
    forget_app_engine()


@pytest.fixture
def toban(
    template: Template, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Toban]:
    server = template.server
    name = f"toban_test_{uuid.uuid4().hex[:12]}"
    _admin(
        server,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template.database)
        ),
    )
    url = server.maintenance_url.set(database=name, drivername=APP_DRIVER)
    # These commands never reach Dagster's storage; it only has to be another database.
    _point_at(monkeypatch, url, url.set(database=f"{name}_dagster", drivername=DAGSTER_DRIVER))
    engine = create_engine(url)
    yield Toban(engine, template.slack_id, template.channel_ids, capsys)
    engine.dispose()
    get_settings.cache_clear()
    server.drop_database(url)


@pytest.fixture
def unmigrated(
    postgres_server: PostgresServer, empty_database: URL, monkeypatch: pytest.MonkeyPatch
) -> Iterator[URL]:
    """The environment of a database that was never migrated (and a Dagster database)."""
    dagster = postgres_server.create_database().set(drivername=DAGSTER_DRIVER)
    _point_at(monkeypatch, empty_database, dagster)
    yield empty_database
    get_settings.cache_clear()
    forget_app_engine()
    postgres_server.drop_database(dagster)


def _message_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(SlackChannel.name, func.count(SlackMessage.id))
            .join(SlackMessage, SlackMessage.channel_id == SlackChannel.id)
            .where(SlackMessage.is_deleted.is_(False))
            .group_by(SlackChannel.name)
        )
        return {name: int(count) for name, count in rows}


# --- channels -------------------------------------------------------------------------------


def test_channels_lists_each_channel_with_its_state_and_warnings(toban: Toban) -> None:
    with toban.engine.begin() as connection:  # an archived channel the app left
        connection.execute(
            update(SlackChannel).where(SlackChannel.name == "old-project").values(has_bot=False)
        )
    code, out, _ = toban("slack", "channels", "--workspace", toban.slack_id)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("#")}
    counts = _message_counts(toban.engine)
    assert set(lines) == {f"#{name}" for name in toban.channel_ids}
    general = lines["#general"]
    assert general.split()[1:6] == [
        toban.channel_ids["general"],
        "public",
        "member",
        "yes",
        str(LAST),
    ]
    assert str(counts["general"]) in general.split()
    assert lines["#design"].endswith("the app is not a member")
    assert lines["#old-project"].split()[2:4] == ["public", "(archived)"]
    assert lines["#old-project"].endswith("archived and the app is not in it")
    assert out.splitlines()[-2:] == [
        "warning: #design: the app is not a member: invite it, or turn on --join-public-channels",
        "warning: #old-project: archived and the app is not in it: cannot be read (deselect it)",
    ]
    private = [line for name, line in lines.items() if name.startswith("#private-")]
    assert len(private) == 2
    assert all(line.split()[2:5] == ["private", "member", "no"] for line in private)
    # general, random, engineering, old-project (public channels the app can read start
    # selected) and design (selected by name in the template)
    assert out.startswith(f"Channels of {toban.slack_id} (Fake Team 7): 7, 5 selected")


# --- select and deselect ----------------------------------------------------------------------


def test_select_and_deselect_by_name_id_glob_all_public_and_private(toban: Toban) -> None:
    messages = _message_counts(toban.engine)
    code, out, _ = toban("slack", "deselect", "--workspace", toban.slack_id, "--all-public")
    assert code == 0
    assert out.startswith(f"Deselected 5 channels of {toban.slack_id}")
    assert "stored messages stay" in out
    assert toban.selected() == set()
    assert _message_counts(toban.engine) == messages  # deselecting keeps the data

    code, out, _ = toban(
        "slack", "select", "--workspace", toban.slack_id,
        "gen*", toban.channel_ids["random"], "#engineering",
    )  # fmt: skip
    assert code == 0, out
    assert out.startswith(f"Selected 3 channels of {toban.slack_id}")
    assert f"the 2 days of the backfill window ({FIRST} to {LAST})" in out
    assert f"toban backfill --workspace {toban.slack_id} --start {FIRST} --end {LAST}" in out
    assert toban.selected() == {"general", "random", "engineering"}

    private = sorted(name for name in toban.channel_ids if name.startswith("private-"))
    code, _, err = toban("slack", "select", "--workspace", toban.slack_id, "private-*")
    assert code == 1
    assert "--private NAME" in err
    code, _, err = toban("slack", "select", "--workspace", toban.slack_id, "--private", "priv*")
    assert code == 1
    assert "not a glob" in err
    assert toban.selected() == {"general", "random", "engineering"}
    code, out, _ = toban(
        "slack", "select", "--workspace", toban.slack_id, "--private", private[0],
        "--private", toban.channel_ids[private[1]],
    )  # fmt: skip
    assert code == 0
    assert f"#{private[0]}" in out

    code, out, _ = toban("slack", "select", "--workspace", toban.slack_id, "--all-public")
    assert code == 0
    assert "Selected 1 channel " in out  # old-project: archived, but the app is in it
    assert "Left out #design: the app is not a member" in out
    assert toban.selected() == {"general", "random", "engineering", "old-project", *private}

    code, out, _ = toban("slack", "select", "--workspace", toban.slack_id, "design", "general")
    assert code == 0
    assert "warning: #design: the app is not a member" in out
    assert "Already selected: #general" in out

    details = toban.events()
    assert [d["change"] for d in details] == ["channels_deselected"] + ["channels_selected"] * 4
    assert details[1]["channels"] == sorted(
        toban.channel_ids[name] for name in ("general", "random", "engineering")
    )
    assert all(d["workspace"] == toban.slack_id for d in details)


def test_a_name_matching_nothing_is_refused_and_nothing_changes(toban: Toban) -> None:
    before = toban.selected()
    code, out, err = toban(
        "slack", "deselect", "--workspace", toban.slack_id, "general", "enginering"
    )
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "'enginering'" in err
    assert "close: #engineering" in err
    assert toban.selected() == before
    assert toban.events() == []
    code, _, err = toban("slack", "select", "--workspace", toban.slack_id, "--private", "general")
    assert code == 1
    assert "public channel" in err
    code, _, err = toban("slack", "select", "--workspace", "TNOPE", "general")
    assert code == 1
    assert f"No Slack workspace TNOPE is registered (registered: {toban.slack_id})" in err


# --- configure ----------------------------------------------------------------------------------


def test_configure_shows_changes_and_refuses_settings(toban: Toban) -> None:
    code, out, _ = toban("slack", "configure", "--workspace", toban.slack_id)
    assert code == 0
    shown = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(shown) == {f"--{setting.flag}" for setting in SETTINGS}
    assert shown["--pacing"].split()[1:4] == ["off", "(default", "on)"]
    assert shown["--lookback-days"].split()[1] == "30"
    assert shown["--lookback-days"].split()[2] == "0-365"
    assert shown["--retry-backoff"].split()[4:6] == [">0", "<=30"]
    before = toban.sync_settings()

    code, out, _ = toban(
        "slack", "configure", "--workspace", toban.slack_id,
        "--lookback-days", "60", "--include-dms", "on", "--pacing", "off",
    )  # fmt: skip
    assert code == 0
    assert "Changed thread_lookback_days: 30 -> 60" in out
    assert "Changed include_direct_messages: off -> on" in out
    assert "pacing:" not in out  # already off
    assert toban.sync_settings() == {
        **before,
        "thread_lookback_days": 60,
        "include_direct_messages": True,
    }
    (event,) = toban.events()
    assert event == {
        "workspace": toban.slack_id,
        "change": "sync_settings",
        "from": {"include_direct_messages": False, "thread_lookback_days": 30},
        "to": {"include_direct_messages": True, "thread_lookback_days": 60},
    }

    for flag, value, allowed in (
        ("--lookback-days", "400", "a whole number from 0 to 365"),
        ("--page-size", "0", "a whole number from 1 to 999"),
        ("--limited", "maybe", "on or off"),
        ("--retry-backoff", "0", "above 0"),
        ("--recheck-hours", "inf", "at least 0"),
    ):
        code, _, err = toban("slack", "configure", "--workspace", toban.slack_id, flag, value)
        assert code == 1, flag
        assert err.startswith(f"error: {flag} {value}")
        assert allowed in err
        assert err.count("\n") == 1
    assert toban.sync_settings()["thread_lookback_days"] == 60
    assert len(toban.events()) == 1

    code, _, err = toban("slack", "configure", "--workspace", "TNOPE", "--page-size", "10")
    assert code == 1
    assert "No Slack workspace TNOPE" in err


def test_every_sync_option_has_a_setting() -> None:
    assert [setting.name for setting in SETTINGS] == list(SyncOptions.model_fields)


# --- status -------------------------------------------------------------------------------------


def test_status_of_a_healthy_and_of_a_problem_workspace(toban: Toban) -> None:
    code, out, _ = toban("status")
    assert code == 1  # #design is selected (by name, in the template) and the app is not in it
    assert f"toban slack deselect --workspace {toban.slack_id} design" in out

    assert toban("slack", "deselect", "--workspace", toban.slack_id, "design")[0] == 0
    code, out, _ = toban("status")
    assert code == 0, out
    lines = dict(line.split(maxsplit=1) for line in out.splitlines()[1:])
    assert lines["connection"].startswith("ACTIVE, connected (active), last sync")
    assert lines["channels"] == "4 selected of 7"
    assert lines["days"] == f"2 of 2 synced ({FIRST} to {LAST})"
    assert lines["events"] == "0 pending"
    assert lines["analyses"] == "none"
    assert "to" not in lines

    now = datetime.now(UTC)
    with toban.engine.begin() as connection:
        workspace_id = connection.execute(select(SlackWorkspace.id)).scalar_one()
        connection.execute(update(Integration).values(status=IntegrationStatus.EXPIRED))
        connection.execute(
            update(SlackWorkspace).values(is_connected=False, connection_status="invalid_auth")
        )
        connection.execute(text("DELETE FROM slack_sync_day WHERE day = :day"), {"day": FIRST})
        connection.execute(
            SlackEventInbox.__table__.insert().values(  # type: ignore[attr-defined]
                id=uuid.uuid4(), event_id="Ev1", team_id=toban.slack_id, event_type="message",
                event_time=now, transport="http", payload={}, received_at=now - timedelta(hours=2),
            )
        )  # fmt: skip
        for status in ("failed", "failed", "pending"):
            connection.execute(
                SlackAnalysis.__table__.insert().values(  # type: ignore[attr-defined]
                    id=uuid.uuid4(), workspace_id=workspace_id, name="w", status=status,
                    start_date=now, end_date=now,
                )
            )  # fmt: skip
    code, out, _ = toban("status", "--workspace", toban.slack_id)
    assert code == 1
    problem = out.splitlines()
    assert "EXPIRED, not connected (invalid_auth)" in problem[1]
    assert f"1 of 2 synced ({FIRST} to {LAST}); oldest not synced: {FIRST}" in out
    assert "1 pending, oldest received 2 h ago" in out
    assert "1 pending, 2 failed" in out
    todo = [line.split(maxsplit=2)[2] for line in problem if line.split()[:2] == ["to", "do"]]
    assert len(todo) == 3, todo
    assert todo[0].startswith("the integration is EXPIRED")
    assert "toban slack add --team acme" in todo[0]
    assert "Slack event(s) wait to be applied" in todo[1]
    assert todo[2].startswith("2 analysis(es) failed")
    # Not an ACTIVE integration: its missing days are not a thing to run a backfill for.
    assert "toban backfill" not in out
    assert len(problem) <= 12


# --- schema and tokens --------------------------------------------------------------------------


def test_commands_on_an_unmigrated_database_say_which_command_to_run(
    unmigrated: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (
        ["status"],
        ["slack", "channels", "--workspace", "T1"],
        ["slack", "select", "--workspace", "T1", "general"],
        ["slack", "configure", "--workspace", "T1"],
        ["slack", "purge", "--dry-run"],  # no check of its own: the last resort catches it
    ):
        assert main(args) == 1, args
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1, err
        assert "run `toban db upgrade`" in err, err
    assert migrations.current_revision(create_engine(unmigrated)) is None


def test_status_as_a_user_runs_it_on_an_unmigrated_database(unmigrated: URL) -> None:
    env = {name: os.environ[name] for name in ("TOBAN_DATABASE_URL", "TOBAN_DAGSTER_STORAGE_URL")}
    result = run_toban("status", env=env)
    assert result.returncode == 1
    assert "has no Toban schema: run `toban db upgrade` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_add_migrates_a_new_database_and_explains_refused_tokens(
    unmigrated: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOBAN_ENCRYPTION_KEYS", generate_key())
    get_settings.cache_clear()
    workspace = generate_workspace(seed=11, days=1, messages_per_channel_day=1)
    with FakeSlackServer(workspace, TOKEN) as slack:
        add = ["slack", "add", "--team", "acme", "--base-url", slack.base_url]
        wrong = "xoxb-not-the-token-0000"
        monkeypatch.setenv("SLACK_BOT_TOKEN", wrong)
        assert main(add) == 1
        out, err = capsys.readouterr()
        assert err.splitlines()[-1] == (
            "error: Slack refused the token in SLACK_BOT_TOKEN (invalid_auth): check that it is "
            "the app's Bot User OAuth Token (xoxb-...), copied whole, of the workspace you mean, "
            "and that the app is installed in that workspace (Slack app settings, OAuth & "
            "Permissions)"
        )
        assert wrong not in out + err
        # The schema was created all the same (the refusal rolled back only the workspace).
        engine = create_engine(unmigrated)
        assert migrations.current_revision(engine) == migrations.head_revision()

        monkeypatch.setenv("SLACK_BOT_TOKEN", "xapp-1-A0-app-level")
        assert main(add) == 1
        err = capsys.readouterr().err
        assert "(the token in SLACK_BOT_TOKEN does not start with xoxb-)" in err
        assert "xapp-1-A0" not in err

        def missing_scope(request: object) -> dict[str, Any]:
            raise ServerRefusal("missing_scope", needed="team:read", provided="users:read")

        team_info = slack._handlers["team.info"]
        slack._handlers["team.info"] = missing_scope
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        assert main(add) == 1
        err = capsys.readouterr().err
        assert "error: the token lacks the team:read scope (missing_scope on team.info)" in err
        slack._handlers["team.info"] = team_info

        assert main(add) == 0
        out, err = capsys.readouterr()
    assert f"Registered Slack workspace {workspace.team_name} ({workspace.team_id})" in out
    assert TOKEN not in out + err
    with engine.connect() as connection:
        assert connection.execute(select(SlackWorkspace.slack_id)).scalars().all() == [
            workspace.team_id
        ]
    engine.dispose()
