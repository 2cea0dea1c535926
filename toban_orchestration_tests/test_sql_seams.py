"""One persistence seam per domain (issue 18): only each domain's store and the db package's
infrastructure build or run SQL; everything else in toban_orchestration calls their functions
inside the transactions it opens. This reads every module's source (no database) and names each
file:line that builds or runs SQL anywhere else.

Which store owns which tables: slack/store.py the slack_* tables, analysis/store.py the analyses
(slack_analysis, slack_channel_analysis, slack_contribution), access/store.py the team,
integration, credential and resource tables (its docstring says why it sits below slack).

What the check sees: SQLAlchemy imports beyond the handles a caller passes down, the statement
builders of db.upsert, calls that run a statement, and ORM session writes (`session.add`, ...).
What it cannot see: an attribute set on a row a store returned (written at the next flush); the
stores keep such writes in their own functions (`set_integration_status`, ...) by convention.
"""

import ast
from pathlib import Path

import toban_orchestration

PACKAGE_DIR = Path(toban_orchestration.__file__).parent

# The domains' stores: each one the only module that reads and writes its tables.
STORES = {"slack/store.py", "analysis/store.py", "access/store.py"}
# The database's infrastructure: engine and its clock, the embedded server, migrations and the
# table estimates of the schema asset, the counted upserts, the updated_at trigger, and the
# schema declarations (models, column types, naming convention).
DB_INFRASTRUCTURE = {
    "db/base.py",
    "db/embedded.py",
    "db/engine.py",
    "db/migrations.py",
    "db/types.py",
    "db/updated_at.py",
    "db/upsert.py",
}
DB_MODELS = "db/models/"

# Module -> why it still builds SQL outside a store. An entry here is debt, with its reason;
# the test below fails when an entry no longer has SQL, so the list cannot go stale.
NOT_MOVED_YET: dict[str, str] = {}

# What a module above a store may take from SQLAlchemy: the handles it passes down and opens
# transactions on (a resource builds its session factory), and the URL it parses.
ALLOWED_SQLALCHEMY_NAMES = {"Connection", "Engine", "Session", "sessionmaker", "URL"}
# Its errors, to react to them.
ALLOWED_SQLALCHEMY_MODULES = {"sqlalchemy.exc"}
# db.upsert's counters are a plain dataclass; its statement builders are not.
ALLOWED_UPSERT_NAMES = {"WriteCounts"}
# Calls that run a statement, on whatever receiver (no other library here has these names).
STATEMENT_CALLS = {
    "execute",
    "exec_driver_sql",
    "scalar",
    "scalars",
    "scalar_one",
    "scalar_one_or_none",
    "get_one",
    "add_all",
    "query",
}
# ORM unit-of-work calls; sets, dicts, streams and Dagster have these names too, so they count
# only on a receiver named like a session (`session.add`, `self.session.flush`).
SESSION_CALLS = {"add", "delete", "get", "merge", "flush", "refresh", "expunge"}


def sql_uses(source: str) -> list[str]:
    """Each place in a module's source that builds or runs SQL, as "line N: what"."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            found += [(node.lineno, what) for what in _imported_sql(node)]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, f"imports {alias.name}")
                for alias in node.names
                if alias.name.split(".")[0] == "sqlalchemy"
                and alias.name not in ALLOWED_SQLALCHEMY_MODULES
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and (what := _sql_call(node.func)) is not None
        ):
            found.append((node.lineno, what))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def _imported_sql(node: ast.ImportFrom) -> list[str]:
    module = node.module or ""
    if module.split(".")[0] == "sqlalchemy" and module not in ALLOWED_SQLALCHEMY_MODULES:
        allowed = ALLOWED_SQLALCHEMY_NAMES
    elif module.endswith("db.upsert"):
        allowed = ALLOWED_UPSERT_NAMES
    else:
        return []
    return [f"imports {a.name} from {module}" for a in node.names if a.name not in allowed]


def _sql_call(func: ast.Attribute) -> str | None:
    if func.attr in STATEMENT_CALLS:
        return f"calls .{func.attr}()"
    if func.attr in SESSION_CALLS and "session" in ast.unparse(func.value).lower():
        return f"calls {ast.unparse(func.value)}.{func.attr}()"
    return None


def may_issue_sql(module: str) -> bool:
    """Whether `module` (a path relative to the package, with /) is a store or db
    infrastructure."""
    return module in STORES or module in DB_INFRASTRUCTURE or module.startswith(DB_MODELS)


def package_modules() -> dict[str, Path]:
    return {
        path.relative_to(PACKAGE_DIR).as_posix(): path for path in sorted(PACKAGE_DIR.rglob("*.py"))
    }


def test_the_check_sees_sql() -> None:
    source = (
        "from sqlalchemy import Engine, select\n"
        "import sqlalchemy.exc\n"
        "from toban_orchestration.db.upsert import WriteCounts, upsert\n"
        "def f(engine: Engine, seen: set[int]) -> None:\n"
        "    with engine.connect() as connection:\n"
        "        connection.execute(select(1)).scalar_one()\n"
        "    seen.add(1)\n"
        "    session.add(row)\n"
        "    self.session.flush()\n"
    )
    assert sql_uses(source) == [
        "line 1: imports select from sqlalchemy",
        "line 3: imports upsert from toban_orchestration.db.upsert",
        "line 6: calls .execute()",
        "line 6: calls .scalar_one()",
        "line 8: calls session.add()",
        "line 9: calls self.session.flush()",
    ]


def test_the_check_sees_the_stores_sql() -> None:
    # The check passes on nothing if it cannot see SQL; each store is full of it.
    modules = package_modules()
    for store in sorted(STORES):
        uses = sql_uses(modules[store].read_text())
        assert any("calls .execute()" in use for use in uses), store


def test_only_the_stores_and_db_infrastructure_issue_sql() -> None:
    offenders = [
        f"toban_orchestration/{module}:{use.removeprefix('line ')}"
        for module, path in package_modules().items()
        if not may_issue_sql(module) and module not in NOT_MOVED_YET
        for use in sql_uses(path.read_text())
    ]
    assert not offenders, (
        "SQL outside the stores (move it into a function of the store that owns the table):\n"
        + "\n".join(offenders)
    )


def test_the_allowlist_names_only_modules_that_still_issue_sql() -> None:
    modules = package_modules()
    stale = sorted(
        module
        for module in NOT_MOVED_YET
        if module not in modules or not sql_uses(modules[module].read_text())
    )
    assert not stale, f"no SQL left in {stale}: take them off NOT_MOVED_YET"
