"""The import contracts of pyproject.toml ([tool.importlinter]): kept by the package, broken by an upward import."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the contracts of `root`/pyproject.toml on the package under `root` (first on the path),
    leaving no cache behind."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", "--no-logo", *args], cwd=root, env=env,
                          capture_output=True, text=True)


def test_the_package_keeps_every_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    for contract in CONTRACTS:
        assert re.search(re.escape(contract["name"]).replace(r"\ ", r"\s+") + r"\s+KEPT", done.stdout), contract
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package and its contracts, to break one import at a time in copies of it."""
    out = tmp_path_factory.mktemp("pristine")
    shutil.copytree(ROOT / "mirdata", out / "mirdata", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", out)
    return out


@pytest.mark.parametrize(("module", "statement", "contract"), [
    ("mirdata/store.py", "import mirdata.cli", "layers"),  # the store reaches up to the commands
    ("mirdata/schema/record.py", "from mirdata.store import MIRStore", "layers"),  # the old schema <-> store cycle
    ("mirdata/release/card.py", "from mirdata.release.dataset import FEATURES", "release"),  # card <-> dataset
    ("mirdata/models/server.py", "from mirdata.models.local import TransformersRunner", "models"),  # two stacks
])
def test_an_upward_import_breaks_its_contract(pristine: Path, tmp_path: Path, module: str, statement: str,
                                              contract: str) -> None:
    root = tmp_path / "copy"
    shutil.copytree(pristine, root)
    path = root / module
    source = path.read_text()
    path.write_text(source + f"\n{statement}\n")
    line = source.count("\n") + 2
    importer = module.removesuffix(".py").replace("/", ".")
    imported = statement.split()[1]

    done = lint_imports(root)
    assert done.returncode == 1, done.stdout + done.stderr
    name = next(c["name"] for c in CONTRACTS if c["id"] == contract)
    assert re.search(re.escape(name).replace(r"\ ", r"\s+") + r"\s+BROKEN", done.stdout), done.stdout
    # the report names the import that broke it, at its line (an import this far up may break other contracts too)
    assert f"{importer} -> {imported} (l.{line})" in done.stdout, done.stdout
