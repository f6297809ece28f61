"""How the connector modules depend on each other: one way only, so none is half-imported when another needs it.

The ODBC reader process runs the fetch in a child interpreter: the parent side (`odbc`, `read_ahead`) may import
the child side (`read_ahead_child`, `odbc_fetch`), never the reverse, and no connector module imports one that
imports it back. Imports are read from the source (`ast`), wherever they stand: at the top, in a function, under
`TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
from pathlib import Path

from integrator.config import SourceConfig

REPO = Path(__file__).resolve().parent.parent
CONNECTORS = REPO / "connectors"
PACKAGE = "integrator.connectors"


def _modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (the package itself for `__init__.py`)."""
    return {
        PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}": path
        for path in sorted(CONNECTORS.glob("*.py"))
    }


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module `name` imports: `import a.b`, `from a import b` (a submodule or a name
    of `a`), relative imports included."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path back to its start) per module that is on one."""
    cycles = []
    for start in sorted(graph):
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for target in sorted(graph[node]):
                if target == start:
                    cycles.append([*path, start])
                    stack.clear()
                    break
                if target not in seen:
                    seen.add(target)
                    stack.append((target, [*path, target]))
    return cycles


def test_the_import_reader_sees_every_kind_of_import() -> None:
    """The parser itself: absolute, from-, relative and function-level imports all count."""
    graph = _graph()
    assert f"{PACKAGE}.read_ahead" in graph[f"{PACKAGE}.odbc"]
    assert {f"{PACKAGE}.csv", f"{PACKAGE}.odbc"} <= graph[PACKAGE]  # imported inside functions only
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c", "a"],
        ["b", "c", "a", "b"],
        ["c", "a", "b", "c"],
    ]


def test_no_connector_module_imports_one_that_imports_it_back() -> None:
    assert _cycles(_graph()) == []


def test_the_reader_child_imports_no_parent_side_module() -> None:
    """The child side stands alone: what runs in the reader process never reaches back for the parent's code."""
    graph = _graph()
    parent_side = {f"{PACKAGE}.odbc", f"{PACKAGE}.read_ahead", f"{PACKAGE}.csv"}
    reachable, todo = set(), [f"{PACKAGE}.read_ahead_child"]
    while todo:
        for target in graph[todo.pop()] - reachable:
            reachable.add(target)
            todo.append(target)
    assert reachable & parent_side == set()


def test_the_reader_process_starts_without_the_parents_heavy_imports(tmp_path: Path, sqlite_odbc: str) -> None:
    """A reader that has nothing to log reads its rows without structlog, rich or SQLAlchemy (they cost its start,
    which the parent waits for before its first row)."""
    import sqlite3

    from integrator.connectors.read_ahead import _CHILD

    with sqlite3.connect(tmp_path / "erp.db") as db:
        db.execute("CREATE TABLE customers (erp_id INTEGER, name TEXT, email TEXT, tags TEXT)")
        db.execute("INSERT INTO customers VALUES (1, 'Firma', 'f@example.pl', 'b2b')")
    source = SourceConfig(
        kind="odbc",
        connection_string=f"Driver={sqlite_odbc};Database={tmp_path / 'erp.db'}",
        query="SELECT erp_id, name, email, tags FROM customers",
    )
    job = {"source": source, "only": None, "retry_wait": 1.0, "digest_key": None, "leave_out": None}
    report = "import atexit, sys; atexit.register(lambda: sys.stderr.write(repr(sorted(sys.modules))))"
    child = subprocess.run(
        [sys.executable, "-c", f"{report}; {_CHILD}"],
        input=pickle.dumps({**job, "parent": os.getpid()}),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert child.stdout.startswith(b"C")  # the result's columns came first: the read worked
    loaded = set(ast.literal_eval(child.stderr.decode().strip().splitlines()[-1]))
    assert "pyodbc" in loaded
    assert {"structlog", "rich", "sqlalchemy"} & loaded == set()
