"""Nothing silent (issue 17, item 5): lb-reference's attributes against docs/aws-model.md.

Every attribute ``../shared/docs/lb-reference.md`` names in its ALB and "more facts"
sections (§1, §6) is either modelled (:func:`~osilab.balancers.config.model.attribute_reason`
is ``None``) or listed in docs/aws-model.md's "Accepted, not modelled" table with the same
reason the warning gives; and the table lists nothing the model does use.
"""

from __future__ import annotations

import re

import pytest
from shared_paths import REPO, SHARED

from osilab.balancers.config import parse_config
from osilab.balancers.config.model import ATTRIBUTES, attribute_reason

REFERENCE = SHARED / "docs" / "lb-reference.md"
DOC = REPO / "docs" / "aws-model.md"
_PREFIXES = ("routing.", "stickiness.", "load_balancing.", "idle_timeout.", "tcp.", "client_keep_alive.",
             "slow_start.", "deregistration_delay.", "preserve_client_ip.", "proxy_protocol_v2.",
             "target_health_state.", "unhealthy.")  # fmt: skip


def _sections(text: str, numbers: tuple[str, ...]) -> str:
    parts = re.split(r"^## ", text, flags=re.M)
    return "\n".join(p for p in parts if p.split(".", 1)[0].strip() in numbers)


def _reference_attributes() -> list[str]:
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} is not here (CI lays ../shared beside the repository)")
    text = _sections(REFERENCE.read_text(encoding="utf-8"), ("1", "6"))
    found = re.findall(r"`(?:…)?([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?:=[^`]*)?`", text)
    keys = [k for k in dict.fromkeys(found) if k.startswith(_PREFIXES)]
    # "…access_control_allow_origin.header_value" is written without its prefix
    keys += [
        f"routing.http.response.{k}"
        for k in dict.fromkeys(found)
        if k.startswith("access_control_")
    ]
    return keys


def _full(key: str) -> str:
    """lb-reference abbreviates ``target_health_state.unhealthy.*`` as ``unhealthy.*``."""
    return f"target_health_state.{key}" if key.startswith("unhealthy.") else key


def _doc_rows() -> dict[str, str]:
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \|$", DOC.read_text(encoding="utf-8"), flags=re.M)
    return dict(rows)


def test_the_reference_names_attributes() -> None:
    assert len(_reference_attributes()) >= 20  # the extraction itself must find them


@pytest.mark.parametrize("key", _reference_attributes() if REFERENCE.is_file() else [])
def test_each_reference_attribute_is_modelled_or_listed(key: str) -> None:
    reason = attribute_reason(_full(key))
    assert reason != "osilab does not know this attribute", f"{key}: add it to model.ATTRIBUTES"
    if reason is not None:
        assert _doc_rows().get(_full(key)) == reason, (
            f"{key}: docs/aws-model.md must list it with its reason"
        )


@pytest.mark.parametrize(("pattern", "reason"), [(k, r) for k, r in ATTRIBUTES if r])
def test_the_doc_lists_every_unmodelled_attribute_and_says_why(pattern: str, reason: str) -> None:
    assert _doc_rows().get(pattern) == reason


def test_the_doc_lists_no_modelled_attribute() -> None:
    for key in _doc_rows():
        if "." in key and not key.startswith(
            ("Listener.", "TargetGroup.", "MutualAuthentication.", "AuthenticateOidcConfig.")
        ):
            assert attribute_reason(key.replace("*", "x")) is not None, f"{key} is modelled"


@pytest.mark.parametrize(
    ("key", "reason"), [(k.replace("*", "bucket"), r) for k, r in ATTRIBUTES if r]
)
def test_the_warning_says_the_same_reason(key: str, reason: str) -> None:
    config = parse_config({"Type": "application", "Attributes": {key: "x"},
                           "TargetGroups": [{"Name": "web", "Targets": ["192.0.2.11:80"]}],
                           "Listeners": [{"Protocol": "HTTP", "Port": 80, "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]}]})  # fmt: skip
    assert config.warnings == (f"accepted, not modelled: Attributes.{key} ({reason})",)
