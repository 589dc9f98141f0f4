"""Progress bars: on stderr for big captures, never with --quiet, never in the JSON.

The threshold (20 MB) is lowered for the tests, and stderr is made to look like a
terminal (a bar is drawn only on one).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from shared_paths import CAPTURES

import osilab
import osilab._progress as progress_module
from osilab.cli import main

CAPTURE = CAPTURES / "alb" / "alb.pcapng"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, *, tty: bool = True) -> tuple[str, str]:
    out, err = io.StringIO(), (Terminal() if tty else io.StringIO())
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert main(argv) == 0
    return out.getvalue(), err.getvalue()


@pytest.fixture
def low_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    monkeypatch.setattr(progress_module, "THRESHOLD_BYTES", 1)


COMMANDS = [
    ["layers", str(CAPTURE), "--json"],
    ["layers", str(CAPTURE), "--json", "--no-streams"],
    ["route", str(CAPTURE), "--lb", "nlb", "--json"],
    ["route", str(CAPTURE), "--lb", "alb", "--json"],
    ["http", str(CAPTURE), "--json"],
    ["flows", str(CAPTURE), "--json"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:1] + a[2:]))
def test_bar_on_stderr_and_json_unchanged(argv: list[str], low_threshold: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    out, err = run(argv, monkeypatch)
    assert "alb.pcapng" in err and "%|" in err, f"no bar on stderr: {err[-300:]!r}"
    quiet_out, quiet_err = run(argv + ["--quiet"], monkeypatch)
    assert "%|" not in quiet_err
    assert out == quiet_out and out.strip()
    assert "%|" not in out


def test_no_bar_below_the_threshold_or_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    _, err = run(["layers", str(CAPTURE), "--json"], monkeypatch)
    assert "%|" not in err  # 20 MB threshold: the bundled capture is small
    monkeypatch.setattr(progress_module, "THRESHOLD_BYTES", 1)
    _, err = run(["layers", str(CAPTURE), "--json"], monkeypatch, tty=False)
    assert "%|" not in err  # a pipe or a log file gets no bar


def test_importing_ipykernel_does_not_make_a_notebook() -> None:
    """A test runner or script that imports ipykernel is still not a kernel: no default bar."""
    pytest.importorskip("ipykernel")
    import ipykernel  # noqa: F401

    assert not progress_module.in_notebook()


def test_library_bar(low_threshold: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``replay`` and ``iter_http`` draw a bar when asked (in a notebook, by default)."""
    from osilab.balancers import NetworkLoadBalancer, default_config, replay
    from osilab.pipeline import iter_http

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    config = default_config("network", [("203.0.113.10", 80, "tcp")])
    quiet = replay(osilab.read(CAPTURE), NetworkLoadBalancer(config))
    assert "%|" not in err.getvalue()  # not a notebook: no bar unless asked
    loud = replay(osilab.read(CAPTURE), NetworkLoadBalancer(config), progress=True)
    assert "%|" in err.getvalue()
    assert quiet.accounting == loud.accounting
    err.seek(0), err.truncate()
    assert list(iter_http(osilab.read(CAPTURE), progress=True))
    assert "%|" in err.getvalue()


def test_notebook_default(low_threshold: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """In a Jupyter kernel the library shows a bar by default (tqdm.auto)."""
    from osilab.pipeline import iter_http

    kernel_shell = type("Shell", (), {"kernel": object()})()
    fake_ipython = type(sys)("IPython")
    fake_ipython.get_ipython = lambda: kernel_shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ipykernel", type(sys)("ipykernel"))
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    shown: list[int] = []

    class Recorder(progress_module.ByteBar):
        def __call__(self, read: int) -> None:
            shown.append(read)

    monkeypatch.setattr(progress_module, "ByteBar", Recorder)
    messages = list(iter_http(osilab.read(CAPTURE)))
    assert messages and sum(shown) == CAPTURE.stat().st_size
