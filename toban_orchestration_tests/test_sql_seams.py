"""One persistence seam per domain (issue 18): only each domain's store and the db package's
infrastructure build or run SQL; everything else in toban_orchestration calls their functions
inside the transactions it opens. This reads every module's source (no database) and names each
file:line that builds or runs SQL anywhere else.

Which store owns which tables: slack/store.py the slack_* tables, analysis/store.py the analyses
(slack_analysis, slack_channel_analysis, slack_contribution), access/store.py the team,
integration, credential and resource tables (its docstring says why it sits below slack). The
second half of this file checks that each store touches only its own tables (TABLE_OWNERS),
apart from the reads FOREIGN_READS lists with their reasons.

What the check sees: SQLAlchemy imports beyond the handles a caller passes down, the statement
builders of db.upsert, calls that run a statement, and ORM session writes (`session.add`, ...).
What it cannot see: an attribute set on a row a store returned (written at the next flush); the
stores keep such writes in their own functions (`set_integration_status`, ...) by convention.
"""

import ast
import importlib
import re
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy

import toban_orchestration
from toban_orchestration.db.models import Base

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


# --- ownership: each store reads and writes its own domain's tables (issue 18) ----------------
# The check above keeps SQL inside the stores; this one keeps each store to its own tables, so
# "slack/store.py writes integration_event" cannot come back. It reads the stores' sources (no
# database): the ORM models and tables a store names (imported from db.models, or a
# `Model.__table__` alias of one) and the tables named in its SQL text, and compares them with
# TABLE_OWNERS. A write (a model constructed, insert/update/delete/upsert of a model or table,
# INSERT INTO / UPDATE / DELETE FROM in SQL text) is told apart from a read, so that an
# exception can allow reading another domain's table and still forbid writing it.

# Table -> the store that owns it. Every table of the schema must be here (the test below
# fails on one that is not), so a new table gets an owner when it is added.
TABLE_OWNERS: dict[str, str] = {
    **dict.fromkeys(
        (
            "slack_workspace",
            "slack_channel",
            "slack_user",
            "slack_message",
            "slack_reaction",
            "slack_sync_day",
            "slack_event_inbox",
        ),
        "slack/store.py",
    ),
    **dict.fromkeys(
        (
            "slack_analysis",
            "slack_channel_analysis",
            "slack_contribution",
            "slack_analysis_channels",
        ),
        "analysis/store.py",
    ),
    **dict.fromkeys(
        (
            "team",
            "team_member",
            "integration",
            "integration_credential",
            "integration_share",
            "service_resource",
            "resource_access",
            "integration_event",
        ),
        "access/store.py",
    ),
}

# Why a store may READ another domain's tables (never write them). Each reason is one the
# import layers force: a store can only call the stores below it, so a store that needs rows of
# a domain above it, or a domain it may not import, reads them itself.
_ANALYSIS_READS_THE_SYNC = (
    "an analysis reads the messages, reactions, users and channels the sync stored, and the "
    "analysis domain may not import slack (pyproject's forbidden contract keeps Slack's code "
    "out of it); its reads also join those rows to the analyses' own in single statements "
    "(window reads, reports, the analyzable-message rule), which two stores could not share"
)
_ACCESS_RULES_READ_WHAT_THEY_GUARD = (
    "the access rules decide which channels of a workspace a team may read (workspace_access, "
    "analysis_team, analysis_access); access sits below slack in the layers (slack registers "
    "workspaces as integrations through it), so it cannot call slack's store and reads the "
    "workspace owner, its sync settings and its channels itself. Debt, not design: passing "
    "those rows in from the callers (slack and analysis) would lift it, at the cost of every "
    "access entry point's signature"
)
FOREIGN_READS: dict[str, dict[str, str]] = {
    "analysis/store.py": dict.fromkeys(
        (
            "slack_workspace",
            "slack_channel",
            "slack_user",
            "slack_message",
            "slack_reaction",
        ),
        _ANALYSIS_READS_THE_SYNC,
    ),
    "access/store.py": dict.fromkeys(
        ("slack_workspace", "slack_channel"), _ACCESS_RULES_READ_WHAT_THEY_GUARD
    ),
}

MODELS_MODULE = "toban_orchestration.db.models"
# SQL text: the table after a keyword, or each of a comma-separated list (`USING a x, b y`).
_SQL_TABLES = re.compile(
    r"\b(FROM|JOIN|INTO|UPDATE|USING)\s+"
    r"((?:[a-z_]+(?:\s+(?:AS\s+)?[a-z_]\w*)?\s*,\s*)*[a-z_]+)",
    re.IGNORECASE,
)
_SQL_WRITES = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_]+)", re.IGNORECASE)
_WRITE_CALLS = {"insert", "update", "delete", "upsert"}


def model_tables() -> dict[str, str]:
    """Every name db.models exports that is a table (a model class or a plain Table), with its
    table's name."""
    models = importlib.import_module(MODELS_MODULE)
    tables: dict[str, str] = {}
    for name in models.__all__:
        value = getattr(models, name)
        table = getattr(value, "__table__", value)
        if isinstance(table, sqlalchemy.Table):
            tables[name] = table.name
    return tables


def tables_touched(source: str, models: Mapping[str, str]) -> dict[str, set[str]]:
    """Table -> {"read"} or {"read", "write"} for each table `source` names: through a model
    imported from db.models (or a `Model.__table__` alias of one), or in SQL text. A model named
    only in annotations is not touched: the store is handed its rows, it reads none."""
    tree = ast.parse(source)
    touched: dict[str, set[str]] = {}
    names: dict[str, str] = {}  # name -> table: imported models, module-level aliases
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(MODELS_MODULE):
            for alias in node.names:
                if alias.name in models:
                    names[alias.asname or alias.name] = models[alias.name]
    module_nodes = _own_nodes(tree)[0]
    names.update(t for n in module_nodes if (t := _assigned_table(n, names)) is not None)
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]:
        # `x = Model.__table__` in a function binds x there only (several reuse `table`).
        local = dict(names)
        nodes, annotations = _own_nodes(scope)
        local.update(t for n in nodes if (t := _assigned_table(n, names)) is not None)
        for node in nodes:
            if isinstance(node, ast.Name) and node.id in local and id(node) not in annotations:
                touched.setdefault(local[node.id], set()).add("read")
            elif isinstance(node, ast.Call):
                for table in _written_by(node, local):
                    touched.setdefault(table, set()).update({"read", "write"})
    known = set(models.values())
    for text_ in _sql_strings(tree):
        for match in _SQL_TABLES.finditer(text_):
            for item in match.group(2).split(","):
                if (table := item.split()[0]) in known:
                    touched.setdefault(table, set()).add("read")
        for match in _SQL_WRITES.finditer(text_):
            if match.group(2) in known:
                touched.setdefault(match.group(2), set()).update({"read", "write"})
    return touched


def _own_nodes(scope: ast.AST) -> tuple[list[ast.AST], set[int]]:
    """The nodes a module or function evaluates itself, and the ids of those that are
    annotations. A function inside it is evaluated there only as far as its signature and
    decorators go; its body is a scope of its own."""
    found: list[ast.AST] = []
    annotations: list[ast.expr] = []
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        stack: list[ast.AST] = list(scope.body)
    else:
        stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            signature = _signature_annotations(node)
            annotations += signature
            stack.extend([*signature, *node.decorator_list])
            continue
        if isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found, {id(n) for a in annotations for n in ast.walk(a)}


def _signature_annotations(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    found = [a.annotation for a in every if a.annotation is not None]
    return found + ([function.returns] if function.returns is not None else [])


def _assigned_table(node: ast.AST, names: Mapping[str, str]) -> tuple[str, str] | None:
    """(name, table) of `name = Model.__table__` or `name: Table = Model.__table__`."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target, value = node.targets[0], node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        target, value = node.target, node.value
    else:
        return None
    if (
        isinstance(target, ast.Name)
        and isinstance(value, ast.Attribute)
        and value.attr == "__table__"
        and isinstance(value.value, ast.Name)
        and value.value.id in names
    ):
        return target.id, names[value.value.id]
    return None


def _written_by(call: ast.Call, local: Mapping[str, str]) -> set[str]:
    """The tables a call writes: a model constructed (a row to add), or a model or table
    handed to insert/update/delete/upsert."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if isinstance(func, ast.Name) and func.id in local:
        return {local[func.id]}
    if name in _WRITE_CALLS:
        return {local[a.id] for a in call.args if isinstance(a, ast.Name) and a.id in local}
    return set()


def _sql_strings(tree: ast.Module) -> list[str]:
    """Every string constant but docstrings (prose names tables too)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def ownership_violations(
    store: str,
    touched: Mapping[str, set[str]],
    owners: Mapping[str, str] = TABLE_OWNERS,
    foreign_reads: Mapping[str, Mapping[str, str]] = FOREIGN_READS,
) -> list[str]:
    """What `store` does to tables it does not own beyond its listed reads."""
    allowed = foreign_reads.get(store, {})
    found = []
    for table, uses in sorted(touched.items()):
        owner = owners.get(table)
        if owner == store:
            continue
        if "write" in uses:
            found.append(f"{store} writes {table} (owned by {owner})")
        elif table not in allowed:
            found.append(f"{store} reads {table} (owned by {owner})")
    return found


def test_every_table_has_an_owning_store() -> None:
    assert set(TABLE_OWNERS.values()) == STORES
    assert set(TABLE_OWNERS) == set(Base.metadata.tables), (
        "give each table an owning store in TABLE_OWNERS (and drop those no longer in the schema)"
    )


def test_the_ownership_check_catches_a_foreign_table() -> None:
    models = model_tables()
    source = (
        "from sqlalchemy import insert, select, text\n"
        "from toban_orchestration.db.models import IntegrationEvent, SlackChannel, Team\n"
        "channels = SlackChannel.__table__\n"
        "def f(connection, team: Team) -> None:\n"
        "    '''A docstring naming FROM slack_analysis is prose.'''\n"
        "    connection.execute(insert(IntegrationEvent).values(details={}))\n"
        "    connection.execute(select(channels.c.id))\n"
        "    upsert(connection, channels, [], ('slack_id',))\n"
        "    connection.execute(text('SELECT 1 FROM slack_user u JOIN team_member m ON true'))\n"
        "    connection.execute(text('DELETE FROM slack_reaction r USING slack_message m, '\n"
        "                            'slack_sync_day d WHERE false'))\n"
    )
    touched = tables_touched(source, models)
    # `team: Team` is an annotation: the function is handed a row, it reads no table.
    assert touched == {
        "integration_event": {"read", "write"},
        "slack_channel": {"read", "write"},  # through the module-level alias
        "slack_user": {"read"},
        "team_member": {"read"},
        "slack_reaction": {"read", "write"},
        "slack_message": {"read"},
        "slack_sync_day": {"read"},
    }
    assert ownership_violations("slack/store.py", touched) == [
        "slack/store.py writes integration_event (owned by access/store.py)",
        "slack/store.py reads team_member (owned by access/store.py)",
    ]
    # A listed read is allowed; the same table written never is.
    assert ownership_violations(
        "slack/store.py",
        touched,
        foreign_reads={"slack/store.py": {"team_member": "", "integration_event": ""}},
    ) == ["slack/store.py writes integration_event (owned by access/store.py)"]


def test_each_store_touches_only_its_own_tables_and_listed_reads() -> None:
    models = model_tables()
    modules = package_modules()
    violations = [
        violation
        for store in sorted(STORES)
        for violation in ownership_violations(
            store, tables_touched(modules[store].read_text(), models)
        )
    ]
    assert not violations, (
        "a store touches another domain's table: move the statement into the owning store "
        "(or list a read in FOREIGN_READS with the reason it cannot move):\n"
        + "\n".join(violations)
    )


def test_the_listed_foreign_reads_are_still_made() -> None:
    # Like NOT_MOVED_YET: an exception no longer needed is taken off, so the list stays true.
    models = model_tables()
    modules = package_modules()
    stale = sorted(
        f"{store}: {table}"
        for store, tables in FOREIGN_READS.items()
        for table in tables
        if table not in tables_touched(modules[store].read_text(), models)
    )
    assert not stale, f"no longer read, take them off FOREIGN_READS: {stale}"
