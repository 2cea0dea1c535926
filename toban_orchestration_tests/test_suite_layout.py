"""The suite's own layout: no test module is imported as a library.

A test module imported by another runs its module-level code (and pulls its fixtures) twice and
ties two test files together; what several modules share lives in support modules instead.
"""

import ast

from toban_orchestration.settings import PROJECT_ROOT

SUITE = "toban_orchestration_tests"
SCANNED = (PROJECT_ROOT / SUITE, PROJECT_ROOT / "benchmarks")


def is_test_module(dotted: str) -> bool:
    """Whether a dotted name is one of the suite's test modules: a test_*.py file in it (a
    function named test_* imported from a support module is not)."""
    parts = dotted.split(".")
    return (
        len(parts) >= 2
        and parts[0] == SUITE
        and parts[-1].startswith("test_")
        and PROJECT_ROOT.joinpath(*parts).with_suffix(".py").is_file()
    )


def imported_test_modules(source: str, package: str = SUITE) -> list[str]:
    """The suite's test modules that this source (of a module in `package`) imports, in any
    form of import."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = anchor if node.module is None else f"{anchor}.{node.module}"
            else:
                base = node.module or ""
            if is_test_module(base):
                found.append(base)
            found += [f"{base}.{a.name}" for a in node.names if is_test_module(f"{base}.{a.name}")]
    return found


def test_the_checker_sees_every_form_of_import() -> None:
    ids = "toban_orchestration_tests.platform.test_ids"
    assert imported_test_modules("from toban_orchestration_tests.platform.test_ids import y") == [
        ids
    ]
    assert imported_test_modules("import toban_orchestration_tests.platform.test_ids as t") == [ids]
    assert imported_test_modules(
        "from toban_orchestration_tests.platform import test_ids, test_demo"
    ) == [ids, "toban_orchestration_tests.platform.test_demo"]
    assert imported_test_modules(
        "from .test_ids import y", package="toban_orchestration_tests.platform"
    ) == [ids]
    assert imported_test_modules(
        "from ..platform.test_ids import y", package="toban_orchestration_tests.slack"
    ) == [ids]
    assert (
        imported_test_modules("from toban_orchestration_tests.support.web_api_sync import test_y")
        == []
    )


def test_no_module_imports_a_test_module() -> None:
    importers = {
        str(path.relative_to(PROJECT_ROOT)): imported
        for folder in SCANNED
        for path in sorted(folder.rglob("*.py"))
        if (
            imported := imported_test_modules(
                path.read_text(encoding="utf-8"),
                ".".join(path.parent.relative_to(PROJECT_ROOT).parts),
            )
        )
    }
    assert not importers, (
        f"these files import test modules; move what they share into "
        f"toban_orchestration_tests/support/ (or conftest.py for fixtures): {importers}"
    )
