"""Tests for osilab.balancers.mitigation: the one desync policy (mode x tier -> action).

The table is lb-reference.md §1.8 (ALB User Guide, "Desync mitigation mode"), written
out again here row by row so that a change to :data:`osilab.balancers.mitigation.POLICY`
has to be made twice to pass.
"""

from __future__ import annotations

import doctest

import pytest

import osilab.balancers.mitigation as mitigation_module
from osilab.balancers.mitigation import (
    POLICY,
    MitigationAction,
    MitigationMode,
    mitigate,
    normalise,
)
from osilab.errors import ConfigError
from osilab.protocols.desync import Tier
from osilab.protocols.messages import DesyncVerdict

# ---------------------------------------------------------------------------
# Mitigation and normalisation
# ---------------------------------------------------------------------------

# lb-reference.md §1.8, row by row.
MITIGATION_TABLE = {
    ("monitor", "Compliant"): "forward",
    ("monitor", "Acceptable"): "forward",
    ("monitor", "Ambiguous"): "forward",
    ("monitor", "Severe"): "forward",
    ("defensive", "Compliant"): "forward",
    ("defensive", "Acceptable"): "forward",
    ("defensive", "Ambiguous"): "forward_then_close",
    ("defensive", "Severe"): "block_400",
    ("strictest", "Compliant"): "forward",
    ("strictest", "Acceptable"): "block",
    ("strictest", "Ambiguous"): "block",
    ("strictest", "Severe"): "block",
}

SAMPLE_VERDICTS = {
    "Compliant": DesyncVerdict("Compliant"),
    "Acceptable": DesyncVerdict("Acceptable", "SpaceInUri", "a space"),
    "Ambiguous": DesyncVerdict("Ambiguous", "BothTeClPresent", "TE and CL"),
    "Severe": DesyncVerdict("Severe", "BadHeader", "NUL"),
}


@pytest.mark.parametrize(("mode", "klass"), sorted(MITIGATION_TABLE))
def test_mitigate_follows_the_aws_table(mode: str, klass: str) -> None:
    verdict = SAMPLE_VERDICTS[klass]
    mitigation = mitigate(verdict, mode)
    action = MITIGATION_TABLE[(mode, klass)]
    assert mitigation.action == action
    assert (mitigation.mode, mitigation.klass, mitigation.reason) == (mode, klass, verdict.reason)
    assert mitigation.forwarded == (action in ("forward", "forward_then_close"))
    assert mitigation.close_client_connection == (action != "forward")
    assert mitigation.close_target_connection == (action == "forward_then_close")
    assert mitigation.counted_as_non_compliant == (klass != "Compliant")
    assert mode in mitigation.why
    assert (verdict.reason or "no rule") in mitigation.why


def test_mitigate_defaults_to_defensive_and_takes_the_enum() -> None:
    severe = SAMPLE_VERDICTS["Severe"]
    assert mitigate(severe).action == MitigationAction.BLOCK_400
    assert mitigate(severe).summary == "defensive: Severe (BadHeader) -> block_400"
    assert mitigate(severe, MitigationMode.MONITOR).action == "forward"
    assert "400" in mitigate(severe).why


@pytest.mark.parametrize("mode", ["paranoid", ""])
def test_mitigate_rejects_an_unknown_mode(mode: str) -> None:
    with pytest.raises(ConfigError, match="desync_mitigation_mode"):
        mitigate(SAMPLE_VERDICTS["Compliant"], mode)


def test_mitigate_rejects_an_unknown_class() -> None:
    with pytest.raises(ConfigError, match="Dubious"):
        mitigate(DesyncVerdict("Dubious"), "defensive")


TE_AND_CL = [("Host", "a"), ("Transfer-Encoding", "chunked"), ("Content-Length", "4")]


def test_normalise_removes_the_content_length_beside_transfer_encoding() -> None:
    result = normalise("POST", "/", "HTTP/1.1", TE_AND_CL, "defensive")
    assert result.forwarded
    assert result.headers == (("Host", "a"), ("Transfer-Encoding", "chunked"))
    assert result.removed == (("Content-Length", "4"),)
    assert "Bad" in result.why


def test_normalise_changes_nothing_in_monitor_mode() -> None:
    result = normalise("POST", "/", "HTTP/1.1", TE_AND_CL, "monitor")
    assert result.forwarded
    assert result.headers == tuple(TE_AND_CL)
    assert result.removed == ()
    assert "monitor" in result.why


def test_normalise_keeps_one_of_two_identical_content_lengths() -> None:
    headers = [("Content-Length", "7"), ("Content-Length", "7")]
    result = normalise("PUT", "/", "HTTP/1.1", headers, "defensive")
    assert result.headers == (("Content-Length", "7"),)
    assert len(result.removed) == 1


def test_normalise_reports_a_blocked_request_as_not_forwarded() -> None:
    headers = [("Content-Length", "7"), ("Content-Length", "8")]
    result = normalise("PUT", "/", "HTTP/1.1", headers, "defensive")
    assert not result.forwarded
    assert result.removed == ()
    assert "MultipleContentLength" in result.why
    assert not normalise("PUT", "/", "HTTP/1.1", [("X", "a\x01")], "strictest").forwarded


def test_normalise_drops_invalid_header_names_when_asked() -> None:
    headers = [("Host", "a"), ("X_Token", "t"), ("X-Ok", "1")]
    kept = normalise("GET", "/", "HTTP/1.1", headers, "defensive")
    assert kept.headers == tuple(headers)
    dropped = normalise(
        "GET", "/", "HTTP/1.1", headers, "defensive", drop_invalid_header_fields=True
    )
    assert dropped.headers == (("Host", "a"), ("X-Ok", "1"))
    assert dropped.removed == (("X_Token", "t"),)
    assert "[-A-Za-z0-9]+" in dropped.why


def test_normalise_leaves_a_compliant_request_alone() -> None:
    headers = [("Host", "a"), ("Content-Length", "3")]
    result = normalise("POST", "/", "HTTP/1.1", headers, "strictest")
    assert result.forwarded and result.headers == tuple(headers) and result.removed == ()


def test_the_policy_table_covers_every_mode_and_tier_once() -> None:
    assert set(POLICY) == {(mode, tier) for mode in MitigationMode for tier in Tier}
    assert {(m.value, t.name): a.value for (m, t), a in POLICY.items()} == MITIGATION_TABLE


def test_docstring_examples_run() -> None:
    result = doctest.testmod(mitigation_module)
    assert result.attempted >= 5
    assert result.failed == 0
