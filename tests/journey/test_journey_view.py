"""The journey's HTML: self-contained (no external URL), accessible, the same fragment in a notebook."""

from __future__ import annotations

import json
import re

import pytest
from journey.conftest import cache_outcomes

from osilab.journey import compare, journey, request_ids, save_html
from osilab.journey.view import layout

_DATA = re.compile(r'<script type="application/json" class="osj-data">(.*?)</script>', re.S)


def _api_request(path, outcome="miss"):
    outcomes = cache_outcomes(path)
    return next(rid for rid in request_ids(path) if outcomes.get(rid) == outcome)


@pytest.fixture(scope="module")
def views(architecture):
    alb = journey(architecture["alb"], request=_api_request(architecture["alb"], "miss"))
    nlb = journey(architecture["nlb"], request=_api_request(architecture["nlb"], "hit"))
    return {
        "standalone": alb.to_html(),
        "fragment": alb._repr_html_(),
        "compare": compare(alb, nlb),
        "compare fragment": compare(alb, nlb, standalone=False),
    }


@pytest.mark.parametrize("name", ["standalone", "fragment", "compare", "compare fragment"])
def test_no_external_urls(views, name):
    document = views[name]
    outside_data = _DATA.sub("", document)
    assert not re.search(r"https?://", outside_data, re.I), "a URL outside the request data"
    assert not re.search(r"<script[^>]*\bsrc\s*=", document, re.I)
    assert not re.search(r"<link\b", document, re.I)
    assert not re.search(r"@import|url\(", document, re.I)
    assert "xmlns" not in outside_data
    # Inside the data, a URL may only come from the captured request itself (headers, bodies).
    for blob in _DATA.findall(document):
        data = json.loads(blob)
        messages = " ".join(e["message"] for e in data["events"])
        for url in re.findall(r"https?://[^\s\"']+", blob):
            assert url in messages or url in json.dumps([e["packet_in"] for e in data["events"]])


@pytest.mark.parametrize("name", ["standalone", "compare"])
def test_standalone_is_a_whole_document(views, name):
    document = views[name]
    assert document.startswith("<!DOCTYPE html>") and document.rstrip().endswith("</html>")
    assert "<style>" in document and "<script>" in document


def test_fragment_is_not_a_document(views):
    fragment = views["fragment"]
    assert "<html" not in fragment and "<!DOCTYPE" not in fragment
    assert fragment.count("<style>") == 1 and "data-osj" in fragment


def test_accessible_controls(views):
    document = views["standalone"]
    for action in ("back", "play", "step"):
        button = re.search(rf'<button type="button" data-act="{action}"[^>]*>', document)
        assert button and "aria-label=" in button.group(0)
    assert 'tabindex="0"' in document and 'aria-live="polite"' in document
    assert 'role="toolbar"' in document and "<title id=" in document  # the SVG is labelled


def test_event_list_lists_every_event(architecture, views):
    data = json.loads(_DATA.findall(views["standalone"])[0])
    items = re.findall(r'class="osj-ev [^"]*" data-i="(\d+)"', views["standalone"])
    assert [int(i) for i in items] == list(range(len(data["events"])))


def test_compare_opens_each_view_at_its_balancer(views):
    starts = [json.loads(blob)["start"] for blob in _DATA.findall(views["compare"])]
    events = [json.loads(blob)["events"] for blob in _DATA.findall(views["compare"])]
    assert [evs[s]["role"] for evs, s in zip(events, starts, strict=True)] == ["alb", "nlb"]
    assert [evs[s]["stopped_at"] for evs, s in zip(events, starts, strict=True)] == [7, 4]


def test_layout_puts_devices_left_to_right_by_role(synthetic):
    trip = journey(synthetic["alb"], request="r0001")
    positions = layout(trip)
    x = {name: positions[name][0] for name in positions}
    assert x["client"] < x["alb"] < x["web1"] < x["api1"] < x["data"] < x["cache"]
    assert x["cache"] == x["db"] and positions["cache"][1] != positions["db"][1]


def test_save_html(synthetic, tmp_path):
    trip = journey(synthetic["alb"], request="r0002")
    out = save_html(trip, tmp_path / "j.html")
    assert out.read_text(encoding="utf-8") == trip.to_html()
