"""The curriculum notebooks: they run, they draw, they are saved clean, they read as essays.

Each notebook is executed once per test session in a fresh ``python3`` kernel (the same
way ``osilab tour`` does) and the executed copy is inspected; the saved files are checked
as they are on disk. Issue 6 sets the limits: every notebook under 60 s, all of them
under 5 minutes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from shared_paths import REPO

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
jupytext = pytest.importorskip("jupytext")

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
    "11-edge-cache",  # issue 21: which requests never reach the ALB, and why
    "12-websocket",  # issue 19: after the upgrade, the ALB is an L4 balancer
    "13-failover",  # issue 18: what each balancer does when a target dies
    "14-quic-migration",  # issue 20: a connection is not a 5-tuple any more
)
PER_NOTEBOOK_SECONDS = 60.0
ALL_NOTEBOOKS_SECONDS = 300.0
#: Each notebook is paired with a MyST Markdown file (``notebooks/jupytext.toml``).
PAIRING = "ipynb,md:myst"


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


def _drift(notebook_path: Path) -> list[str]:
    """How a saved ``.ipynb`` differs from its paired MyST file (empty when they agree).

    The ``.md`` is the source people edit; the ``.ipynb`` must hold the same cells (type,
    source, metadata such as the ``figure`` tag), in the same order, and declare the pair
    in its ``jupytext.formats`` metadata so JupyterLab saves both.
    """
    text_path = notebook_path.with_suffix(".md")
    if not text_path.is_file():
        return [f"{notebook_path.name} has no paired {text_path.name}"]
    saved = nbformat.read(notebook_path, as_version=4)
    text = jupytext.read(text_path)
    problems = []
    formats = saved.metadata.get("jupytext", {}).get("formats")
    if formats != PAIRING:
        problems.append(f"{notebook_path.name}: jupytext formats {formats!r}, not {PAIRING!r}")
    ours = [(c.cell_type, _text(c), dict(c.metadata)) for c in saved.cells]
    theirs = [(c.cell_type, _text(c), dict(c.metadata)) for c in text.cells]
    if len(ours) != len(theirs):
        problems.append(
            f"{notebook_path.name} has {len(ours)} cells, {text_path.name} has {len(theirs)}"
        )
    for index, (mine, other) in enumerate(zip(ours, theirs, strict=False)):
        if mine != other:
            problems.append(f"{notebook_path.name}: cell {index} differs from {text_path.name}")
            break
    return problems


@pytest.mark.parametrize("name", TOPICS)
def test_each_notebook_equals_its_paired_myst_file(name: str) -> None:
    """The drift test: ``NN-name.md`` (MyST, edited in a diff or JupyterLab) is the source."""
    problems = _drift(NOTEBOOKS / f"{name}.ipynb")
    assert not problems, "; ".join(problems) + (
        " (run: .venv/bin/jupytext --sync notebooks/[0-9][0-9]-*.md)"
    )


def test_the_drift_check_sees_an_edited_sentence(tmp_path: Path) -> None:
    """An edit to the ``.md`` that was not synced to the ``.ipynb`` is caught, and sync cures it."""
    for suffix in (".ipynb", ".md"):
        (tmp_path / f"05-nlb-vs-alb{suffix}").write_bytes(
            (NOTEBOOKS / f"05-nlb-vs-alb{suffix}").read_bytes()
        )
    copy = tmp_path / "05-nlb-vs-alb.ipynb"
    assert _drift(copy) == []
    text = tmp_path / "05-nlb-vs-alb.md"
    text.write_text(
        text.read_text(encoding="utf-8").replace("## What to notice", "## What to see", 1),
        encoding="utf-8",
    )
    assert _drift(copy) == ["05-nlb-vs-alb.ipynb: cell 0 differs from 05-nlb-vs-alb.md"]
    jupytext.write(jupytext.read(text), copy)  # what `jupytext --sync` does to the pair
    assert _drift(copy) == []


def test_saving_in_jupyterlab_writes_both_files(tmp_path: Path) -> None:
    """JupyterLab saves through jupytext's contents manager: an edit lands in the pair."""
    from jupytext import TextFileContentsManager

    for name in ("05-nlb-vs-alb.ipynb", "05-nlb-vs-alb.md", "jupytext.toml"):
        (tmp_path / name).write_bytes((NOTEBOOKS / name).read_bytes())
    manager = TextFileContentsManager(root_dir=str(tmp_path))
    notebook = manager.get("05-nlb-vs-alb.md")["content"]  # the .md, opened as a notebook
    notebook.cells[0].source = notebook.cells[0].source.replace("# 5.", "# Five.", 1)
    manager.save({"type": "notebook", "content": notebook}, "05-nlb-vs-alb.md")
    saved = nbformat.read(tmp_path / "05-nlb-vs-alb.ipynb", as_version=4)
    assert saved.cells[0].source.startswith("# Five.")
    text = (tmp_path / "05-nlb-vs-alb.md").read_text(encoding="utf-8")
    assert "\n# Five." in text and "jupytext_version" not in text  # notebooks/jupytext.toml
    assert _drift(tmp_path / "05-nlb-vs-alb.ipynb") == []


def test_the_generator_is_gone() -> None:
    """The MyST files replaced ``notebooks/_build.py`` (issue 23): one source, not two."""
    assert not (NOTEBOOKS / "_build.py").exists()
    assert sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]-*.md")) == list(TOPICS)


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
