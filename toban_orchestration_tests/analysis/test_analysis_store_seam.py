"""Issue 18: analysis/store.py is the analysis domain's one persistence seam. No other module of
the analysis package may issue SQL; this reads their source (no database) and names any that
does."""

import ast
from pathlib import Path

import toban_orchestration.analysis as analysis_package

ANALYSIS_DIR = Path(analysis_package.__file__).parent

# Module -> why it still issues SQL. Empty: everything has moved; an entry here is debt.
NOT_MOVED_YET: dict[str, str] = {}

# What issuing SQL looks like: building a statement, or running one through a connection or
# session. (`add`, `get` and `delete` are left out: sets and dicts have them too.)
STATEMENT_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "upsert"}
EXECUTING_METHODS = {
    "execute",
    "exec_driver_sql",
    "scalars",
    "scalar",
    "get_one",
    "flush",
    "add_all",
    "merge",
}


def sql_uses(source: str) -> list[str]:
    """Each place in a module's source that builds or runs SQL, as "line N: what"."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.split(".")[0] == "sqlalchemy" or node.module.endswith("db.upsert"):
                found += [
                    (node.lineno, f"imports {alias.name} from {node.module}")
                    for alias in node.names
                    if alias.name in STATEMENT_BUILDERS
                ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EXECUTING_METHODS
        ):
            found.append((node.lineno, f"calls .{node.func.attr}()"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def test_only_the_store_issues_sql_in_the_analysis_package() -> None:
    modules = sorted(p for p in ANALYSIS_DIR.glob("*.py") if p.name != "store.py")
    offenders = {
        module.name: uses
        for module in modules
        if module.name not in NOT_MOVED_YET and (uses := sql_uses(module.read_text()))
    }
    assert not offenders, (
        "SQL outside analysis/store.py (move it into a store function): "
        + "; ".join(f"{name}: {', '.join(uses)}" for name, uses in offenders.items())
    )
    moved = sorted(
        name for name in NOT_MOVED_YET if not sql_uses((ANALYSIS_DIR / name).read_text())
    )
    assert not moved, f"no SQL left in {moved}: take them off NOT_MOVED_YET"


def test_the_check_sees_the_stores_sql() -> None:
    # The check above passes on nothing if it cannot see SQL; the store is full of it.
    uses = sql_uses((ANALYSIS_DIR / "store.py").read_text())
    assert any("imports select from sqlalchemy" in use for use in uses)
    assert any("calls .execute()" in use for use in uses)
    assert sql_uses("from toban_orchestration.db.upsert import upsert\n") == [
        "line 1: imports upsert from toban_orchestration.db.upsert"
    ]
