"""``osilab tour``: the README's first command.

It prints a text tour of the bundled captures, renders every notebook to HTML with its
run time, and fails cleanly (no traceback, exit code 1) when something is missing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from shared_paths import REPO

from osilab.cli import main

NOTEBOOK_NAMES = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))

_URL = r"(?:https?:)?//"
#: What makes a browser fetch something when it opens a page: a script or an image source,
#: a stylesheet link, a URL inside a script (``import``, ``fetch``) or a style (``url()``).
_FETCHES = (
    re.compile(rf"<(?:script|img|iframe|embed|source)\b[^>]*\bsrc\s*=\s*[\"']?{_URL}", re.I),
    re.compile(rf"<link\b[^>]*\bhref\s*=\s*[\"']?{_URL}", re.I),
    re.compile(r"<script\b[^>]*>(?:(?!</script>).)*?https?://", re.I | re.S),
    re.compile(rf"(?:url\(\s*[\"']?|@import\s+[\"']?){_URL}", re.I),
)


def loads_from_internet(page: str) -> list[str]:
    """Each place in an HTML page that fetches from the network (CSS comments ignored)."""
    page = re.sub(r"/\*.*?\*/", "", page, flags=re.S)
    return [
        page[max(m.start(), m.end() - 60) : m.end() + 60]  # the URL and a little before it
        for pattern in _FETCHES
        for m in pattern.finditer(page)
    ]


def test_help_works_and_shows_an_example() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "osilab.cli", "tour", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for option in ("--html-dir", "--lab", "--quiet"):
        assert option in done.stdout
    assert "osilab tour --html-dir build" in done.stdout


def test_the_text_tour_walks_the_layers_and_both_balancers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["tour"]) == 0
    out = capsys.readouterr().out
    for hop in ("client-alb", "client-nlb", "client-l4p"):
        assert hop in out
    for layer in ("OSI 2", "OSI 3", "OSI 4", "OSI 7"):
        assert layer in out
    assert "NLB requests per target" in out and "ALB requests per target" in out
    assert "agrees with the real balancer's log" in out
    assert "--html-dir" in out, "it says how to get the notebooks"


@pytest.mark.slow
def test_renders_every_notebook_to_html_with_its_run_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert NOTEBOOK_NAMES, "no notebooks found"
    assert main(["tour", "--quiet", "--html-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in NOTEBOOK_NAMES:
        page = tmp_path / f"{name}.html"
        assert page.is_file(), f"{name}.html was not written"
        text = page.read_text(encoding="utf-8")
        assert "data:image/png;base64" in text, f"{name}.html shows no figure"
        assert "Question for the team" in text
        assert "Traceback" not in text
        assert loads_from_internet(text) == [], f"{name}.html loads from the internet"
        line = next(line for line in out.splitlines() if name in line)
        assert " s " in line and str(page) in line, line
    assert f"{len(NOTEBOOK_NAMES)} of {len(NOTEBOOK_NAMES)} notebooks rendered" in out


def test_a_failing_notebook_is_reported_and_the_exit_code_is_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nbformat = pytest.importorskip("nbformat")
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(
        new_notebook(cells=[new_markdown_cell("# fine"), new_code_cell("1 + 1")]),
        folder / "01-fine.ipynb",
    )
    nbformat.write(
        new_notebook(cells=[new_code_cell("raise ValueError('on purpose')")]),
        folder / "02-broken.ipynb",
    )
    code = main(
        ["tour", "--quiet", "--notebooks", str(folder), "--html-dir", str(tmp_path / "html")]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert (tmp_path / "html" / "01-fine.html").is_file()
    assert not (tmp_path / "html" / "02-broken.html").exists()
    assert "02-broken" in captured.out and "FAILED" in captured.out and "on purpose" in captured.out
    assert "1 notebook(s) failed" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_a_missing_notebooks_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["tour", "--notebooks", str(tmp_path / "nowhere"), "--html-dir", str(tmp_path)]) == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("osilab: error: no notebooks folder at") and "Traceback" not in err


def test_a_rendered_page_loads_nothing_from_the_internet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No MathJax, require.js, mermaid or widget manager from a CDN (issue 23).

    nbconvert's own page fetches all of them; the tour's page must work offline. A widget
    cannot run in a static page, so its place says so, and the cell below it prints.
    """
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert")
    pytest.importorskip("ipywidgets")
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    folder = tmp_path / "notebooks"
    folder.mkdir()
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# A page\n\nWith $x^2$ maths and a [link](https://example.org)."),
            new_code_cell("import ipywidgets\nipywidgets.IntSlider(value=3)"),
            new_code_cell("print('the static result')"),
        ]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, folder / "01-page.ipynb")
    assert main(["tour", "--quiet", "--notebooks", str(folder), "--html-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    page = (tmp_path / "01-page.html").read_text(encoding="utf-8")
    assert loads_from_internet(page) == []
    assert "interactive widget" in page and "the static result" in page
    assert "widget-state+json" not in page and "widget-view+json" not in page
    assert 'href="https://example.org"' in page, "a link is not a fetch: it stays"

    from osilab.commands.tour import execute_notebook

    executed, _ = execute_notebook(folder / "01-page.ipynb")
    plain, _ = nbconvert.HTMLExporter().from_notebook_node(executed)
    found = " ".join(loads_from_internet(plain))
    assert "require" in found and "mathjax" in found, "the check sees nbconvert's own CDN scripts"
