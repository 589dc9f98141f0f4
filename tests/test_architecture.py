"""docs/architecture.md stays true: every ``path:name`` it cites exists, and the walk is short."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
CITED = sorted(set(re.findall(r"`(osilab/[\w/]+\.py):(\w+)`", DOC)))
WALK = re.findall(r"^\d+\. `osilab/", DOC, flags=re.M)


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_doc_cites_names() -> None:
    assert len(CITED) >= 8


@pytest.mark.parametrize(("path", "name"), CITED)
def test_every_cited_name_exists(path: str, name: str) -> None:
    file = REPO / path
    assert file.is_file(), f"docs/architecture.md cites {path}, which does not exist"
    assert name in _top_level_names(file), f"docs/architecture.md cites {path}:{name}: no such name"


def test_one_packet_reaches_a_decision_in_at_most_eight_stops() -> None:
    assert 1 <= len(WALK) <= 8, f"the walk from osilab.read to a Decision has {len(WALK)} stops"


def test_every_stage_folder_is_in_the_doc() -> None:
    folders = sorted(p.name for p in (REPO / "osilab").iterdir() if (p / "__init__.py").is_file())
    missing = [f for f in folders if f"`{f}/`" not in DOC]
    assert not missing, f"stages missing from docs/architecture.md: {missing}"
