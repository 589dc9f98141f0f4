"""``osilab tour``: a short walk through the bundled captures, and the notebooks as HTML.

The README's first command. It does three things, each optional:

1. prints a short text tour (unless ``--quiet``): the lab captures and their hops, one
   HTTP request packet taken apart into its layers (OSI and TCP/IP side by side), and
   the NLB and ALB models replayed on the same client traffic;
2. with ``--html-dir DIR``, executes every notebook of ``notebooks/`` in a fresh
   ``python3`` kernel and writes it as a standalone HTML page to ``DIR``, printing each
   notebook's run time (so the curriculum can be read without a Jupyter server);
3. with ``--lab``, opens JupyterLab on the notebooks folder instead.

A notebook that fails is reported with its name and the failing cell's error, the
others are still rendered, and the exit code is 1. Never a traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from osilab.errors import OsilabError, UsageError

HELP = "walk through the bundled captures; render the notebooks to HTML or open JupyterLab"
EXAMPLE = "osilab tour --html-dir build"

__all__ = [
    "HELP",
    "EXAMPLE",
    "add_arguments",
    "run",
    "NotebookRun",
    "notebooks_folder",
    "notebook_paths",
    "execute_notebook",
    "render_notebook",
    "offline_html",
    "OFFLINE_TEMPLATE",
]

#: The kernel the notebooks run in (``make`` installs it into the virtual environment).
KERNEL = "python3"
#: Seconds one cell may run before the tour gives up on its notebook.
CELL_TIMEOUT = 120

#: The HTML page: nbconvert's ``lab`` template with nothing fetched from the internet.
#: nbconvert's page loads require.js, MathJax and mermaid from a CDN, and the Jupyter widget
#: manager when a notebook holds widget state. The curriculum needs none of them: no maths,
#: no mermaid, its figures are PNG and osilab's own views carry their script inline. So the
#: page leaves them out, and a widget (notebook 5's rule editor) shows one line saying where
#: it works, above the static result its cell prints. Read offline, the page is complete.
OFFLINE_TEMPLATE = "osilab-offline.html.j2"
_OFFLINE_TEMPLATE_TEXT = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_widget_view scoped -%}
<div class="jp-OutputArea-output {{ extra_class }}"><p><em>An interactive widget: open this
notebook in JupyterLab (osilab tour --lab) to use it. The result it shows is printed
below.</em></p></div>
{%- endblock data_widget_view -%}
{%- block footer -%}
</html>
{%- endblock footer -%}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--html-dir",
        metavar="DIR",
        help="execute every notebook and write it as HTML into DIR (created if missing)",
    )
    parser.add_argument(
        "--lab", action="store_true", help="open JupyterLab on the notebooks folder instead"
    )
    parser.add_argument("--quiet", action="store_true", help="skip the text tour")
    parser.add_argument(
        "--notebooks",
        metavar="DIR",
        help="the notebooks folder (default: notebooks/ of the osilab checkout)",
    )
    parser.add_argument(
        "--only",
        metavar="NAME",
        action="append",
        help="render only notebooks whose name starts with NAME (repeatable), e.g. --only 01",
    )


# --------------------------------------------------------------------------- notebooks


@dataclass(frozen=True, slots=True)
class NotebookRun:
    """The outcome of executing one notebook.

    Attributes:
        name: the notebook's file name without ``.ipynb``.
        seconds: wall-clock time of the execution (kernel start included).
        html: where the HTML page was written (``None`` when not rendered or failed).
        error: one line saying what failed, or ``None``.
    """

    name: str
    seconds: float
    html: Path | None = None
    error: str | None = None


def notebooks_folder(given: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the numbered notebooks.

    Raises:
        UsageError: the folder does not exist (an installed osilab has no notebooks: run
            the tour from a checkout, or give ``--notebooks``).
    """
    from osilab.lessons.samples import REPO

    folder = Path(given) if given else REPO / "notebooks"
    if not folder.is_dir():
        raise UsageError(
            f"no notebooks folder at {folder}: run the tour from an osilab checkout, "
            "or point --notebooks at the folder"
        )
    return folder


def notebook_paths(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks of ``folder`` in order (``01-...ipynb`` first)."""
    found = sorted(p for p in folder.glob("[0-9][0-9]-*.ipynb"))
    if only:
        found = [p for p in found if any(p.stem.startswith(prefix) for prefix in only)]
    return found


def _notebook_tools() -> tuple[object, object, object]:
    try:
        import nbclient
        import nbconvert
        import nbformat
    except ImportError as exc:
        raise UsageError(
            f"rendering notebooks needs {exc.name}: install osilab with its notebooks extra "
            "(pip install -e '.[notebooks]', which 'make tour' does)"
        ) from None
    return nbclient, nbconvert, nbformat


def execute_notebook(path: Path, *, timeout: int = CELL_TIMEOUT) -> tuple[object, float]:
    """Execute one notebook in a fresh ``python3`` kernel, in its own folder.

    Returns the executed notebook (an ``nbformat`` node) and the seconds it took.

    Raises:
        OsilabError: the kernel is missing, or a cell raised (the message names the
            notebook and gives the cell's error).
    """
    nbclient, _, nbformat = _notebook_tools()
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    notebook = nbformat.read(path, as_version=4)  # type: ignore[attr-defined]
    client = nbclient.NotebookClient(  # type: ignore[attr-defined]
        notebook,
        timeout=timeout,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    try:
        # The kernel's own stderr (a start-up warning about its local TCP transport) is
        # not the learner's business; cell errors come back through the protocol.
        client.execute(stderr=subprocess.DEVNULL)
    except NoSuchKernel:
        raise OsilabError(
            f"no Jupyter kernel named {KERNEL!r}: run '{sys.executable} -m ipykernel install "
            f"--sys-prefix --name {KERNEL}' (the Makefile does)"
        ) from None
    except CellExecutionError as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        raise OsilabError(f"{path.name}: a cell failed: {lines[-1] if lines else exc}") from None
    except (CellTimeoutError, DeadKernelError) as exc:
        raise OsilabError(f"{path.name}: {type(exc).__name__}: {exc}") from None
    return notebook, time.perf_counter() - started


def offline_html(notebook: object) -> str:
    """An executed notebook as one HTML page that loads nothing from the internet.

    Figures are embedded (PNG, base64), styles inline, and the CDN scripts of nbconvert's
    page (require.js, MathJax, mermaid, the widget manager) are left out
    (:data:`OFFLINE_TEMPLATE`), and so is the widget state nbclient saved: a widget's
    place shows one line instead.
    """
    import jinja2

    _, nbconvert, _ = _notebook_tools()
    exporter = nbconvert.HTMLExporter(  # type: ignore[attr-defined]
        template_name="lab",
        template_file=OFFLINE_TEMPLATE,
        extra_loaders=[jinja2.DictLoader({OFFLINE_TEMPLATE: _OFFLINE_TEMPLATE_TEXT})],
    )
    body, _ = exporter.from_notebook_node(notebook)
    return str(body)


def render_notebook(path: Path, html_dir: Path, *, timeout: int = CELL_TIMEOUT) -> NotebookRun:
    """Execute ``path`` and write it as ``html_dir/<name>.html``; never raises for a bad notebook."""
    _, nbconvert, _ = _notebook_tools()
    started = time.perf_counter()
    try:
        notebook, seconds = execute_notebook(path, timeout=timeout)
    except OsilabError as exc:
        return NotebookRun(path.stem, time.perf_counter() - started, None, exc.reason)
    body = offline_html(notebook)
    html_dir.mkdir(parents=True, exist_ok=True)
    out = html_dir / f"{path.stem}.html"
    out.write_text(body, encoding="utf-8")
    return NotebookRun(path.stem, seconds, out)


# --------------------------------------------------------------------------- the text tour


def text_tour() -> list[str]:
    """The short text tour over the bundled captures, as lines (printed by :func:`run`)."""
    from osilab.balancers.compare import compare
    from osilab.capture import read
    from osilab.lessons import scenarios

    lines = ["osilab tour: real traffic recorded by the lab (captures/README.md)", ""]
    for scenario in scenarios.SCENARIOS:
        try:
            path = scenarios.capture_path(scenario)
        except OsilabError:
            lines.append(f"  {scenario:8} (not recorded: 'sudo osilab lab record' makes it)")
            continue
        counts = scenarios.hops(read(path))
        hops = ", ".join(f"{hop} {n}" for hop, n in counts.items())
        lines.append(
            f"  {scenario:8} {sum(counts.values()):5} packets on {len(counts)} hops: {hops}"
        )

    front = scenarios.hop_packets("alb", "client-alb")
    packet = next(p for p in front if "http" in p)
    lines += ["", f"1. One packet, layer by layer (alb.pcapng #{packet.no}, hop client-alb):"]
    for layer in packet.layers:
        lines.append(
            f"   OSI {layer.osi}  TCP/IP {layer.tcpip:11}  {layer.name:5} "
            f"bytes {layer.offset:3}-{layer.offset + layer.length - 1:<4} {layer.summary.splitlines()[0]}"
        )

    # HTTP on 80 and HTTPS on 443: the ALB model reads the HTTPS requests with the key
    # log the lab's client wrote (an ALB holds the certificate; the model needs the keys).
    comparison = compare(
        front,
        scenarios.balancer_config("nlb", "nlb"),  # the lab's NLB: TCP listeners on 80 and 443
        alb_config=scenarios.balancer_config("alb", "alb"),  # its ALB: HTTP 80 and HTTPS 443
        keylog=str(scenarios.capture_path("alb").parent / "keylog.txt"),
    )
    lines += ["", "2. The same client traffic through an NLB (L4) and an ALB (L7) model:"]
    lines += [f"   {line}" for line in comparison.summary_lines()]
    truth = scenarios.truth("alb")["requests"]
    agree = sum(
        1
        for d in comparison.alb.decisions
        if d.request is not None
        and truth.get(d.request.header("X-Request-Id") or "", {}).get("target") == d.target
    )
    lines.append(
        f"   the ALB model agrees with the real balancer's log on {agree} of "
        f"{len(comparison.alb.decisions)} requests"
    )
    rule_row = next((r for r in comparison.rows if r.request.path.startswith("/api/")), None)
    if rule_row is not None:
        lines += [
            "",
            "3. Why, for one request:",
            f"   NLB: {rule_row.nlb_why}",
            f"   ALB: {rule_row.alb_why}",
        ]
    return lines


# --------------------------------------------------------------------------- the command


def _open_lab(folder: Path) -> int:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        raise UsageError(
            "JupyterLab is not installed: install osilab with its notebooks extra "
            "(pip install -e '.[notebooks]')"
        ) from None
    print(f"osilab: opening JupyterLab on {folder} (Ctrl-C to stop)", file=sys.stderr)
    return subprocess.call([sys.executable, "-m", "jupyterlab", str(folder)])


def run(args: argparse.Namespace) -> int:
    folder = notebooks_folder(args.notebooks)
    if args.lab:
        return _open_lab(folder)
    if not args.quiet:
        for line in text_tour():
            print(line)
    if not args.html_dir:
        if not args.quiet:
            print("\nThe notebooks: osilab tour --html-dir build (HTML) or osilab tour --lab")
        return 0
    paths = notebook_paths(folder, args.only)
    if not paths:
        raise UsageError(f"no notebooks (NN-name.ipynb) in {folder}")
    html_dir = Path(args.html_dir)
    if not args.quiet:
        print()
    print(f"rendering {len(paths)} notebooks to {html_dir}/ (each in a fresh {KERNEL} kernel)")
    failed = 0
    total = 0.0
    for path in paths:
        result = render_notebook(path, html_dir)
        total += result.seconds
        if result.error:
            failed += 1
            print(f"  {result.name:28} {result.seconds:6.1f} s  FAILED: {result.error}")
        else:
            print(f"  {result.name:28} {result.seconds:6.1f} s  -> {result.html}")
    print(f"{len(paths) - failed} of {len(paths)} notebooks rendered in {total:.1f} s")
    if failed:
        print(f"osilab: error: {failed} notebook(s) failed", file=sys.stderr)
        return 1
    return 0
