"""Frozen records made quickly: an ``__init__`` that fills a frozen dataclass's slots directly.

A frozen dataclass cannot assign to its own fields, so the ``__init__`` that
:func:`dataclasses.dataclass` writes for it stores each field with
``object.__setattr__(self, "name", value)``: a lookup of the attribute by name, then of
its slot, for every field of every record. That is the right default, and it costs
little once. But osilab makes several records for every request of a capture (the
request, its messages, its balancer decision), and there that cost is about a third of
building them.

:func:`quick_init` writes the same ``__init__`` -- the same parameters, in the same
order, with the same defaults and default factories -- which calls each slot's own
setter (``Class.field.__set__``, the member descriptor that a ``__slots__`` entry is)
instead. The record stays frozen: assigning to a field afterwards still raises
:class:`dataclasses.FrozenInstanceError`, because that goes through the class's
``__setattr__``, not through the slot. This is how :mod:`dataclasses` makes its own
``__init__`` too: Python source, compiled once per class, at import. The source is made of
the class's own field names (checked to be identifiers) and nothing else: no byte of a
capture or of a configuration ever reaches it (``tests/robustness/test_untrusted.py``
allows this one compile and no other).

>>> from dataclasses import dataclass, field, FrozenInstanceError
>>> @quick_init
... @dataclass(frozen=True, slots=True)
... class Point:
...     x: int
...     y: int = 0
...     tags: list[str] = field(default_factory=list)
>>> Point(1), Point(1, 2, ["a"]) == Point(x=1, y=2, tags=["a"])
(Point(x=1, y=0, tags=[]), True)
>>> Point(1).x = 5
Traceback (most recent call last):
dataclasses.FrozenInstanceError: cannot assign to field 'x'
"""

from __future__ import annotations

import dataclasses
import keyword
import sys
from typing import Any, TypeVar

__all__ = ["quick_init"]

_T = TypeVar("_T", bound=type)


class _Factory:
    """The default of a field with a default factory: "call the factory" (shown as the
    dataclass's own ``__init__`` shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def quick_init(cls: _T) -> _T:
    """Give ``cls`` (a ``@dataclass(frozen=True, slots=True)`` class) an ``__init__`` that
    fills its slots through their setters; its signature is the dataclass's own.

    Raises :class:`TypeError` for what it does not reproduce (a ``__post_init__``, an
    ``InitVar``, a field left out of ``__init__``): such a class keeps the dataclass's own.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"quick_init: {cls.__name__} is not a dataclass")
    params = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or not all(f.init for f in params) or not params:
        raise TypeError(f"quick_init: {cls.__name__} needs the dataclass's own __init__")
    fields_and_initvars = cls.__dataclass_fields__  # type: ignore[attr-defined]
    if len(params) != len(fields_and_initvars):
        raise TypeError(f"quick_init: {cls.__name__} has an InitVar")
    unslotted = [f.name for f in params if f.name not in cls.__dict__.get("__slots__", ())]
    if unslotted:  # not slots=True, or fields inherited from a base class
        raise TypeError(f"quick_init: {cls.__name__} keeps {unslotted[0]!r} in no slot of its own")
    names: dict[str, Any] = {"_FACTORY": _FACTORY}
    signature, body, keyword_only = [], [], False
    # As the dataclass's own: the keyword-only fields after all the others.
    ordered = [f for f in params if not f.kw_only] + [f for f in params if f.kw_only]
    for number, f in enumerate(ordered):
        names[f"_set{number}"] = cls.__dict__[f.name].__set__  # the slot's own setter
        if f.kw_only and not keyword_only:
            signature.append("*")
            keyword_only = True
        if f.default is not dataclasses.MISSING:
            names[f"_default{number}"] = f.default
            signature.append(f"{f.name}=_default{number}")
        elif f.default_factory is not dataclasses.MISSING:
            names[f"_factory{number}"] = f.default_factory
            signature.append(f"{f.name}=_FACTORY")
            body.append(f"if {f.name} is _FACTORY: {f.name} = _factory{number}()")
        else:
            signature.append(f.name)
        body.append(f"_set{number}(self, {f.name})")
    if any(f.name in names or f.name == "self" or not f.name.isidentifier()
           or keyword.iskeyword(f.name) for f in params):  # fmt: skip
        raise TypeError(f"quick_init: a field of {cls.__name__} has a name this code uses")
    # The setters and defaults are the arguments of an outer function, so the __init__
    # reads them as closure cells (the fastest lookup there is), never as globals.
    source = (
        f"def make({', '.join(names)}):\n"
        f"    def __init__(self, {', '.join(signature)}):\n"
        + "".join(f"        {line}\n" for line in body)
        + "    return __init__\n"
    )
    namespace: dict[str, Any] = {}
    # Run in the class's module, as dataclasses does: the string annotations of the
    # __init__ then resolve there (typing.get_type_hints, inspect.signature(eval_str=True)).
    module = sys.modules.get(cls.__module__)
    where = module.__dict__ if module is not None else {}
    exec(compile(source, f"<quick_init {cls.__qualname__}>", "exec"), where, namespace)  # noqa: S102
    init = namespace["make"](**names)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {**{f.name: f.type for f in ordered}, "return": None}
    cls.__init__ = init  # type: ignore[method-assign, misc]
    return cls
