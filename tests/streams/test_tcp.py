"""The TCP state machine: the table, every (state, input) pair, real handshakes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from osilab.streams.tcp import TRANSITIONS, TcpInput, TcpState, TcpTracker, tcp_input


@pytest.mark.parametrize(
    ("segments", "state"),
    [
        ([(0x02, True), (0x12, False), (0x10, True)], TcpState.ESTABLISHED),
        ([(0x02, True)], TcpState.SYN_SENT),  # half-open: no answer
        ([(0x02, True), (0x14, False)], TcpState.RESET),  # refused
        ([(0x02, True), (0x12, False), (0x10, True), (0x11, True)], TcpState.CLIENT_CLOSED),
        ([(0x02, True), (0x12, False), (0x10, True), (0x11, False), (0x11, True)], TcpState.CLOSED),
        ([(0x18, True), (0x10, False)], TcpState.ESTABLISHED),  # mid-stream start
    ],
)
def test_connections(segments, state):
    tracker = TcpTracker()
    for no, (flags, from_client) in enumerate(segments, start=1):
        tracker.feed(flags, from_client, no)
    assert tracker.state is state
    assert tracker.anomalies == []


def test_an_impossible_pair_is_recorded_not_obeyed():
    tracker = TcpTracker()
    for no, (flags, from_client) in enumerate(
        [(0x02, True), (0x12, False), (0x10, True), (0x02, True)], 1
    ):
        tracker.feed(flags, from_client, no)
    assert tracker.state is TcpState.ESTABLISHED
    assert [str(a) for a in tracker.anomalies] == ["packet 4: syn in state established"]


def test_every_state_is_reachable_and_rst_ends_every_state():
    reached = {TcpState.NEW} | set(TRANSITIONS.values())
    assert reached == set(TcpState)
    for state in TcpState:
        assert TRANSITIONS[(state, TcpInput.RST)] is TcpState.RESET


@given(
    st.lists(
        st.tuples(st.sampled_from([0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14]), st.booleans()),
        max_size=30,
    )
)
def test_any_sequence_either_moves_by_the_table_or_records_an_anomaly(segments):
    tracker = TcpTracker()
    for no, (flags, from_client) in enumerate(segments):
        before, anomalies = tracker.state, len(tracker.anomalies)
        tracker.feed(flags, from_client, no)
        pair = (before, tcp_input(flags, from_client))
        if pair in TRANSITIONS:
            assert tracker.state is TRANSITIONS[pair]
        else:
            assert tracker.state is before and len(tracker.anomalies) == anomalies + 1


def test_the_table_only_names_known_states_and_inputs():
    for state, event in itertools.product(TcpState, TcpInput):
        following = TRANSITIONS.get((state, event))
        assert following is None or isinstance(following, TcpState)
