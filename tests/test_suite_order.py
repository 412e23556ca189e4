"""The suite's own layout on 2 xdist workers: what the README says about it, and the slow modules first."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import tomllib

from tests.conftest import SLOW_FIRST, pytest_collection_modifyitems

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_runs_two_workers_one_module_each_in_collection_order() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert options["addopts"].split() == ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]
    assert "2 pytest-xdist workers, one test module per worker at a time" in " ".join(
        (ROOT / "README.md").read_text().split()
    )


def test_every_slow_first_module_exists() -> None:
    """A renamed module would silently drop back to its alphabetical place (and maybe end the run alone)."""
    assert [name for name in SLOW_FIRST if not (ROOT / "tests" / name).is_file()] == []


def test_slow_modules_move_to_the_front_in_their_order_and_the_rest_keep_theirs() -> None:
    def item(module: str, test: str) -> Any:
        return SimpleNamespace(path=ROOT / "tests" / module, name=test)

    items = [item("test_alerts.py", "a"), item(SLOW_FIRST[1], "b"), item("test_zeta.py", "c"),
             item(SLOW_FIRST[0], "d"), item(SLOW_FIRST[1], "e"), item("test_alerts.py", "f")]  # fmt: skip
    pytest_collection_modifyitems(items)
    assert [i.name for i in items] == ["d", "b", "e", "a", "c", "f"]
