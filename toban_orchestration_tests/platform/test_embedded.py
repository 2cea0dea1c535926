"""The embedded PostgreSQL: a real server from a wheel, started once, reused, stopped."""

from pathlib import Path

import psycopg

from toban_orchestration.db.embedded import SERVER_SETTINGS, EmbeddedPostgres
from toban_orchestration_tests.helpers import run_toban


def test_start_reuse_stop_and_restart_keep_the_data(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pgdata")
    assert not server.is_running()
    first = server.start()
    try:
        assert first.started_now
        assert server.start().started_now is False  # attaches to the running server
        url = server.ensure_database("kept")
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute("CREATE TABLE note (body text)")
            connection.execute("INSERT INTO note VALUES ('survives a restart')")
            # Written to postgresql.auto.conf by the first start (read back from the file, as
            # the reload that makes it live is asynchronous).
            file_settings: dict[str, str] = dict(
                connection.execute(
                    "SELECT name, setting FROM pg_file_settings"
                    " WHERE sourcefile LIKE '%%postgresql.auto.conf' AND applied"
                ).fetchall()
            )
        assert {name: file_settings.get(name) for name in SERVER_SETTINGS} == SERVER_SETTINGS
        assert server.ensure_database("kept") == url  # idempotent

        server.stop()
        assert not server.is_running()
        assert server.start().started_now
        with psycopg.connect(conninfo) as connection:
            body = connection.execute("SELECT body FROM note").fetchone()
            live_settings = {
                name: connection.execute("SELECT current_setting(%s)", (name,)).fetchone()
                for name in SERVER_SETTINGS
            }
        assert body == ("survives a restart",)
        assert live_settings == {name: (value,) for name, value in SERVER_SETTINGS.items()}
    finally:
        server.stop()
    assert not server.is_running()


def test_cli_starts_the_embedded_server_for_a_command_and_stops_it_after(tmp_path: Path) -> None:
    environment = {"TOBAN_STATE_DIR": str(tmp_path / "state")}
    result = run_toban("db", "upgrade", env=environment)
    assert result.returncode == 0, result.stderr
    assert "database 'toban'" in result.stdout
    server = EmbeddedPostgres(tmp_path / "state" / "pgdata")
    assert not server.is_running()

    # A server that was already running is left running.
    server.start()
    try:
        assert run_toban("db", "current", env=environment).returncode == 0
        assert server.is_running()
        status = run_toban("embedded", "status", env=environment)
        assert "running" in status.stdout
    finally:
        assert run_toban("embedded", "stop", env=environment).returncode == 0
    assert not server.is_running()
