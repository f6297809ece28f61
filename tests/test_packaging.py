"""The wheel a plain `pip install .` builds carries everything the product loads from disk at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Local state and build leftovers: a stale build/lib could otherwise smuggle deleted files into the wheel.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
    ".hypothesis", "demo", "out", "*.db", "*.db-*", "*.eml",
)  # fmt: skip

pytestmark = pytest.mark.slow

PROBE_PRESET = "zz_packaging_probe.sql"

# Repository folder -> where it installs: one top-level package, `integrator` (no `templates` in site-packages).
INSTALLED_AS = {"connectors": "integrator/connectors", "rules": "integrator/rules", "templates": "integrator/templates"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built once from a clean copy of the working tree (the repo itself is not touched)."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    # A probe preset, so the preset glob is proven to ship a file even while the repository has none of its own.
    (source / "connectors" / "presets").mkdir(exist_ok=True)
    (source / "connectors" / "presets" / PROBE_PRESET).write_text("SELECT 1 AS erp_id\n", encoding="utf-8")
    # Build isolation, as `pip install .` does: the build uses pyproject's declared backend, not the venv's.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(source), "-w", str(work / "dist")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = (work / "dist").glob("integrator-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    """Every file name inside the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.parametrize(
    "name",
    [
        "integrator/store/migrations/env.py",
        "integrator/store/migrations/script.py.mako",
        "integrator/store/migrations/versions/0001_initial_schema.py",
        "integrator/py.typed",
        "integrator/connectors/__init__.py",
        "integrator/connectors/py.typed",
        "integrator/rules/__init__.py",
        "integrator/templates/__init__.py",
        "integrator/data/common-passwords.txt.gz",
        "integrator/data/common-passwords.LICENSE",
    ],
)
def test_wheel_contains_runtime_file(wheel_names: set[str], name: str) -> None:
    """Migrations, the typing marker, the connector and rule packages and the common-password list (with its
    licence) are in the wheel."""
    assert name in wheel_names


def test_wheel_contains_every_mail_template(wheel_names: set[str]) -> None:
    """Every `.j2` under templates/ ships, so mail renders after a non-editable install."""
    templates = sorted("integrator/" + p.relative_to(REPO).as_posix() for p in (REPO / "templates").rglob("*.j2"))
    assert templates, "the repo has no mail templates to check"
    assert [t for t in templates if t not in wheel_names] == []


def test_wheel_contains_every_connector_preset(wheel_names: set[str]) -> None:
    """Every shipped preset query (connectors/presets/*.sql), and the probe preset the build added, is in the wheel."""
    presets = sorted("integrator/" + p.relative_to(REPO).as_posix() for p in (REPO / "connectors").rglob("*.sql"))
    presets.append(f"integrator/connectors/presets/{PROBE_PRESET}")
    assert [p for p in presets if p not in wheel_names] == []


def test_wheel_installs_one_top_level_package(wheel_names: set[str]) -> None:
    """Only `integrator` (and its dist-info) reaches site-packages: no `connectors`, `rules` or `templates` there."""
    tops = {name.split("/", 1)[0] for name in wheel_names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"integrator"}
    for folder, installed in INSTALLED_AS.items():
        shipped = {n for n in wheel_names if n.startswith(installed + "/") and n.endswith(".py")}
        in_repo = {f"{installed}/{p.relative_to(REPO / folder).as_posix()}" for p in (REPO / folder).rglob("*.py")}
        assert in_repo and in_repo <= shipped, folder


def test_wheel_declares_the_console_script(wheel: Path, wheel_names: set[str]) -> None:
    """The `integrator` command is declared in the wheel's entry points, pointing at the CLI root."""
    (name,) = [n for n in wheel_names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(name).decode()
    assert "integrator = integrator.cli:run" in entry_points
