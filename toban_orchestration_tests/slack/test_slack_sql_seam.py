"""The Slack domain's SQL lives in slack/store.py only: every other module of the package reaches
the Slack tables through its functions (issue 18). Read from the source, no database."""

import ast
from pathlib import Path

import toban_orchestration.slack as slack_package

SLACK_DIR = Path(slack_package.__file__).parent
STORE = "store.py"
# What a module above the store may take from SQLAlchemy: the handles it passes down (and opens
# transactions on), and the errors it reacts to. No statement builders.
ALLOWED_SQLALCHEMY_NAMES = {"Connection", "Engine", "Session"}
ALLOWED_SQLALCHEMY_MODULES = {"sqlalchemy.exc"}
# Calls that run a statement on a connection or session.
STATEMENT_CALLS = {"execute", "exec_driver_sql", "scalar", "scalars", "scalar_one"}


def sql_outside_store(source: str) -> list[str]:
    """Where a module builds or runs SQL: 'line N: what'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            if node.module in ALLOWED_SQLALCHEMY_MODULES:
                continue
            found += [
                f"line {node.lineno}: imports {alias.name} from {node.module}"
                for alias in node.names
                if alias.name not in ALLOWED_SQLALCHEMY_NAMES
            ]
        elif isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: imports {alias.name}"
                for alias in node.names
                if alias.name.startswith("sqlalchemy")
                and alias.name not in ALLOWED_SQLALCHEMY_MODULES
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in STATEMENT_CALLS
        ):
            found.append(f"line {node.lineno}: calls .{node.func.attr}()")
    return found


def test_the_check_sees_sql() -> None:
    source = (
        "from sqlalchemy import Engine, select\n"
        "import sqlalchemy.exc\n"
        "def f(engine: Engine) -> None:\n"
        "    with engine.connect() as connection:\n"
        "        connection.execute(select(1)).scalar_one()\n"
    )
    assert sql_outside_store(source) == [
        "line 1: imports select from sqlalchemy",
        "line 5: calls .scalar_one()",
        "line 5: calls .execute()",
    ]


def test_only_the_store_issues_sql_in_the_slack_package() -> None:
    offenders = {
        path.name: where
        for path in sorted(SLACK_DIR.glob("*.py"))
        if path.name != STORE and (where := sql_outside_store(path.read_text()))
    }
    assert offenders == {}, f"SQL outside slack/{STORE} (move it into the store): {offenders}"
