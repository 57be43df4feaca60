"""The README's module map lists every shipped module, and names no module that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("shell", "bordermon", "streams", "producers", "monitoring", "dashboards")


def module_map() -> set[str]:
    """The `.py` paths in the first column of the README's module table."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| module | one job |") :]
    table = table[: table.index("\n\n")]
    first_columns = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `")]
    return {path for column in first_columns for path in re.findall(r"`([\w/]+\.py)`", column)}


def test_the_module_map_lists_every_shipped_module_and_only_those():
    modules = {
        p.relative_to(ROOT).as_posix()
        for package in SHIPPED
        for p in (ROOT / package).rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    }
    listed = module_map()
    assert modules - listed == set(), "modules missing from the README's map"
    assert {m for m in listed if m.split("/")[0] in SHIPPED} - modules == set(), "the map names modules that are gone"
