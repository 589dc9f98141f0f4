"""quick_init: the same records as the dataclass's own __init__, still frozen.

osilab's hot records (AppMessage, HttpRequest, HttpResponse, FlowMessage, FlowRecord,
Decision) are built through :func:`osilab.streams.frozen.quick_init`. These tests hold it to the
dataclass's own ``__init__``: same signature, same defaults, same errors for a wrong call,
still frozen, and each default factory called afresh.
"""

from __future__ import annotations

import dataclasses
import doctest
import inspect
import typing
from dataclasses import FrozenInstanceError, InitVar, dataclass, field

import pytest

from osilab.balancers.decision import Decision, DeferredDecision
from osilab.pipeline.tracker import FlowMessage
from osilab.protocols import AppMessage, Direction
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams import frozen
from osilab.streams.flows import FlowRecord
from osilab.streams.frozen import quick_init
from osilab.streams.keys import Endpoint, FlowKey

FLOW = FlowKey("tcp", Endpoint("198.51.100.7", 51514), Endpoint("203.0.113.20", 80))


def _plain_twin(cls: type) -> type:
    """The same dataclass without quick_init: what the dataclass's own __init__ makes."""
    fields = [(f.name, f.type, f) for f in dataclasses.fields(cls)]
    clean = [(n, t, dataclasses.field(default=f.default, default_factory=f.default_factory,
                                      kw_only=f.kw_only)) for n, t, f in fields]  # fmt: skip
    return dataclasses.make_dataclass(cls.__name__, clean, frozen=True, slots=True)


@pytest.mark.parametrize(
    "cls", [AppMessage, HttpRequest, HttpResponse, FlowMessage, Decision, FlowRecord]
)
def test_the_signature_is_the_dataclass_own(cls: type) -> None:
    assert str(inspect.signature(cls)) == str(inspect.signature(_plain_twin(cls)))
    # The annotations resolve in the class's module, as the dataclass's own do.
    assert typing.get_type_hints(cls.__init__) == typing.get_type_hints(_plain_twin(cls).__init__,
                                                                        vars(inspect.getmodule(cls)))  # fmt: skip
    assert "quick_init" in cls.__init__.__code__.co_filename  # (the test would pass vacuously)


def test_records_equal_the_dataclass_own() -> None:
    args = (FLOW, 3, "GET", "/a?b=1", "HTTP/1.1", (("Host", "shop.example"),), 4, 6, 1.5)
    twin = _plain_twin(HttpRequest)
    for kwargs in ({}, {"stream_id": 1, "body_length": 7, "reading": "backend"}):
        ours, theirs = HttpRequest(*args, **kwargs), twin(*args, **kwargs)
        assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)
    assert HttpRequest(*args) == HttpRequest(*args[:2], method="GET", target="/a?b=1",
                                             version="HTTP/1.1", headers=args[5], first_packet=4,
                                             headers_complete_packet=6, time=1.5)  # fmt: skip
    assert dataclasses.replace(HttpRequest(*args), body_length=9).body_length == 9


def test_still_frozen_and_factories_called_afresh() -> None:
    one = AppMessage("http", Direction.TO_SERVER, 1, 2, 10, "GET / HTTP/1.1")
    two = AppMessage("http", Direction.TO_SERVER, 1, 2, 10, "GET / HTTP/1.1")
    assert one.fields == {} and one.fields is not two.fields  # default_factory=dict, each time
    with pytest.raises(FrozenInstanceError):
        one.length = 11  # type: ignore[misc]
    response = HttpResponse(FLOW, 0, 200, "OK", "HTTP/1.1", (), 7, 7, 2.0)
    assert response.interim == () and response.stream_id is None


def test_a_wrong_call_fails_as_the_dataclass_own_does() -> None:
    with pytest.raises(TypeError, match="missing"):
        HttpResponse(FLOW, 0, 200)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        FlowMessage(FLOW, None, colour="red")  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError, match="unexpected keyword"):  # the deferred one, too
        DeferredDecision(unit="request", flow=FLOW, decided_at=1, target_group=None,
                         target=None, seen=(), why="", colour="red")  # fmt: skip


def test_keyword_only_fields_come_last() -> None:
    @quick_init
    @dataclass(frozen=True, slots=True)
    class Mixed:
        a: int
        b: int = field(default=2, kw_only=True)
        c: int = 3

    assert str(inspect.signature(Mixed)) == "(a: 'int', c: 'int' = 3, *, b: 'int' = 2) -> None"
    assert (Mixed(1, 4, b=5).a, Mixed(1, 4, b=5).b, Mixed(1, 4, b=5).c) == (1, 5, 4)


def test_what_it_does_not_reproduce_is_refused() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:  # pragma: no cover - never built
            pass

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: InitVar[int] = 0

    @dataclass(frozen=True, slots=True)
    class Clash:
        _set0: int

    @dataclass(frozen=True)
    class Unslotted:
        a: int

    @dataclass(frozen=True, slots=True)
    class Base:
        a: int

    @dataclass(frozen=True, slots=True)
    class Derived(Base):  # ``a`` sits in Base's slot, not in one of Derived's own
        b: int = 0

    for cls in (Checked, WithInitVar, Clash, Unslotted, Derived, int):
        with pytest.raises(TypeError, match="quick_init"):
            quick_init(cls)


def test_the_module_example_runs() -> None:
    assert doctest.testmod(frozen).failed == 0
