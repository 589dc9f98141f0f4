"""The curriculum notebooks: they run, they draw, they are saved clean, they read as essays.

Each notebook is executed once per test session in a fresh ``python3`` kernel (the same
way ``osilab tour`` does) and the executed copy is inspected; the saved files are checked
as they are on disk. Issue 6 sets the limits: every notebook under 60 s, all of them
under 5 minutes.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest
from shared_paths import REPO

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

NOTEBOOKS = REPO / "notebooks"
#: The ten topics of issue 6, in order (file names start with these).
TOPICS = (
    "01-layers",
    "02-encapsulation",
    "03-tcp-conversation",
    "04-what-a-balancer-sees",
    "05-nlb-vs-alb",
    "06-tls",
    "07-who-is-the-client",
    "08-architecture",
    "09-http2-behind-l4",
    "10-exercises",
)
PER_NOTEBOOK_SECONDS = 60.0
ALL_NOTEBOOKS_SECONDS = 300.0


def _paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def _text(cell: Any) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


@pytest.fixture(scope="session")
def executed() -> dict[str, tuple[Any, float]]:
    """Every notebook executed once: name -> (executed notebook, seconds)."""
    from osilab.commands.tour import execute_notebook

    results = {}
    for path in _paths():
        notebook, seconds = execute_notebook(path)
        results[path.stem] = (notebook, seconds)
    return results


def test_the_ten_topics_of_issue_6_are_there_in_order() -> None:
    assert [p.stem for p in _paths()] == list(TOPICS)


@pytest.mark.parametrize("name", TOPICS)
def test_saved_with_outputs_cleared(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: cell {cell.get('id')} was saved with outputs"
            assert cell.execution_count is None, f"{name}: cell {cell.get('id')} has a count"
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", TOPICS)
def test_narrative_first_and_a_question_at_the_end(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    markdown = [_text(c) for c in notebook.cells if c.cell_type == "markdown"]
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and _text(first).startswith("# "), "a title comes first"
    assert "## What you will see" in _text(first)
    assert "## What to notice" in _text(first)
    last = notebook.cells[-1]
    assert last.cell_type == "markdown" and "## Question for the team" in _text(last)
    question = _text(last).split("## Question for the team", 1)[1]
    assert "?" in question, "the closing cell asks a question"
    assert sum("Question for the team" in text for text in markdown) == 1


@pytest.mark.parametrize("name", TOPICS)
def test_every_notebook_draws_at_least_one_tagged_figure(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    tagged = [c for c in notebook.cells if "figure" in c.metadata.get("tags", [])]
    assert tagged, f"{name} has no cell tagged 'figure'"
    assert all(c.cell_type == "code" for c in tagged)


@pytest.mark.slow
@pytest.mark.parametrize("name", TOPICS)
def test_executes_in_a_fresh_kernel_within_60_seconds(
    name: str, executed: dict[str, tuple[Any, float]]
) -> None:
    notebook, seconds = executed[name]
    assert seconds < PER_NOTEBOOK_SECONDS, f"{name} took {seconds:.1f} s"
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


@pytest.mark.slow
@pytest.mark.parametrize("name", TOPICS)
def test_each_figure_cell_produces_one_image(
    name: str, executed: dict[str, tuple[Any, float]]
) -> None:
    notebook, _ = executed[name]
    for cell in notebook.cells:
        if "figure" not in cell.metadata.get("tags", []):
            continue
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, f"{name}: figure cell {cell.get('id')} drew {len(images)} images"


@pytest.mark.slow
def test_all_notebooks_together_within_5_minutes(executed: dict[str, tuple[Any, float]]) -> None:
    total = sum(seconds for _, seconds in executed.values())
    assert total < ALL_NOTEBOOKS_SECONDS, f"the notebooks took {total:.1f} s together"


def test_the_generator_reproduces_the_saved_notebooks() -> None:
    """``notebooks/_build.py`` is the source: the saved files must be exactly its output."""
    spec = importlib.util.spec_from_file_location("_build", NOTEBOOKS / "_build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, cells in build.NOTEBOOKS.items():
        expected = nbformat.writes(build.build(name, cells))
        saved = (NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8")
        assert saved.rstrip() == expected.rstrip(), (
            f"{name}.ipynb differs from _build.py's output: rerun it"
        )


def test_a_failing_notebook_is_reported_with_its_name(tmp_path: Path) -> None:
    from nbformat.v4 import new_code_cell, new_notebook

    from osilab.commands.tour import execute_notebook
    from osilab.errors import OsilabError

    notebook = new_notebook(cells=[new_code_cell("1 / 0")])
    path = tmp_path / "99-broken.ipynb"
    nbformat.write(notebook, path)
    started = time.perf_counter()
    with pytest.raises(OsilabError, match="99-broken.ipynb: a cell failed: .*ZeroDivisionError"):
        execute_notebook(path)
    assert time.perf_counter() - started < 60
