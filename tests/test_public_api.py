"""The top-level API a notebook or a script imports: ``import osilab``.

Every public name is importable from ``osilab`` itself and teaches what it does (a
docstring), because learners meet these names first, with ``help()`` or ``?``.
"""

from __future__ import annotations

import inspect

import pytest

import osilab


@pytest.mark.parametrize("name", osilab.__all__)
def test_every_public_name_is_there_and_documented(name: str) -> None:
    obj = getattr(osilab, name)
    doc = inspect.getdoc(obj) or ""
    assert len(doc.split()) >= 5, f"osilab.{name} needs a docstring that teaches"


def test_the_main_entry_points_are_exported() -> None:
    for name in ("read", "replay", "compare", "request_journey", "load_config"):
        assert callable(getattr(osilab, name))
    assert osilab.request_journey is osilab.journey.journey  # the package keeps its name
    assert issubclass(osilab.CaptureError, osilab.OsilabError)
