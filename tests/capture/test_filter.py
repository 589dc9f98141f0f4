"""The display-filter language: parsing, refusals with their column, Wireshark 4.0's meanings,
the field table against ``tshark -G fields``, and the commands that take ``--filter``."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from shared_paths import THIRDPARTY, TUNNELS

import osilab
from osilab.capture.fields import FIELDS
from osilab.capture.filter import FilterError, compile_filter
from osilab.cli import main
from osilab.pipeline import select_packets

HTTP_GET = THIRDPARTY / "zeek" / "http-get.pcap"
HTTP_POST = THIRDPARTY / "zeek" / "http-post.pcap"
FOUR_IN_FOUR = TUNNELS / "zeek" / "tunnels-4in4.pcap"
needs_captures = pytest.mark.skipif(not HTTP_GET.exists(), reason="shared captures not beside the repo")


# -- refusals: each names its column ---------------------------------------------------------

@pytest.mark.parametrize(("expression", "column", "words"), [
    ("eth.src[0:3] == 00:00:00", 8, "slices"),
    ("ip.src#2 == 10.0.0.1", 7, "layer operators"),
    ("len(http.host) > 3", 1, "functions"),
    ("tcp.flags & 0x02", 11, "bitwise"),
    ("tcp.len + 1 > 3", 9, "arithmetic"),
    ("tcp.port == 80 xor udp", 16, "xor"),
    ("ip.src == ip.dst", 11, "comparing two fields"),
    ("tcp.prot == 80", 1, "did you mean tcp.port"),
    ("tcp == 80", 5, "protocol"),
    ("ip.src == localhost", 11, "not an IPv4 address"),
    ("ip.src == 2001:db8::1", 11, "IPv6"),
    ("tcp.port == eighty", 13, "not a number"),
    ('http.host matches "("', 19, "regular expression"),
    ("tcp.port in {}", 13, "empty"),
    ("(tcp", 5, "')' is missing"),
    ('http.host == "open', 14, "never closed"),
    ("", 1, "empty"),
    ("tcp.srcport contains 80", 22, "string or bytes"),
    ("ip.src > 10.0.0.0/8", 8, "cannot order"),
])
def test_refused_with_the_column(expression: str, column: int, words: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(expression)
    assert caught.value.column == column
    assert words in str(caught.value)
    assert f"column {column}" in str(caught.value)


def test_an_unknown_field_lists_near_names() -> None:
    with pytest.raises(FilterError, match="did you mean.*http.request.method"):
        compile_filter("http.request.methd == GET")


# -- the field table is Wireshark's ----------------------------------------------------------

_FT = {"uint": ("FT_UINT", "FT_INT"), "bool": ("FT_BOOLEAN",), "string": ("FT_STRING",),
       "ipv4": ("FT_IPv4",), "ipv6": ("FT_IPv6",), "ether": ("FT_ETHER",), "bytes": ("FT_BYTES",)}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_every_field_name_and_type_is_wiresharks() -> None:
    out = subprocess.run(["tshark", "-G", "fields"], capture_output=True, text=True, timeout=120).stdout
    types = {cols[2]: cols[3] for cols in (line.split("\t") for line in out.splitlines())
             if len(cols) > 3 and cols[0] == "F"}
    wrong = [f"{name}: tshark has {types.get(name, 'no such field')}, osilab says {spec.kind}"
             for name, spec in FIELDS.items()
             if not types.get(name, "").startswith(_FT[spec.kind])]
    assert not wrong, "\n".join(wrong)


# -- meanings, on real captures (tshark 4.0 agrees: test_filter_vs_tshark.py) ----------------

def _selected(path, expression: str) -> list[int]:  # type: ignore[no-untyped-def]
    return [pkt.no for pkt in select_packets(osilab.read(path), expression)]


@needs_captures
@pytest.mark.parametrize(("expression", "frames"), [
    # 4in4: one frame, outer IP 1.2.3.4 -> 5.6.7.8, inner 10.0.0.1 -> 10.0.0.2
    ("ip.src == 1.2.3.4", [1]), ("ip.src == 10.0.0.1", [1]),    # any occurrence
    ("ip.src != 1.2.3.4", []),                                   # 4.0: every occurrence differs
    ("ip.src ~= 1.2.3.4", [1]), ("ip.src !== 1.2.3.4", [1]),    # some occurrence differs
    ("ip.src === 1.2.3.4", []), ("ip.version === 4", [1]),      # every occurrence equals
    ("ip.addr == 10.0.0.0/8 && ip.addr == 5.6.7.8", [1]),        # either field, CIDR
    ("!(ip.src == 1.2.3.4)", []), ("not ip", []),
])
def test_several_occurrences_in_a_tunnelled_frame(expression: str, frames: list[int]) -> None:
    if not FOUR_IN_FOUR.exists():
        pytest.skip("tunnel captures not beside the repo")
    assert _selected(FOUR_IN_FOUR, expression) == frames


@needs_captures
@pytest.mark.parametrize(("expression", "frames"), [
    ("http.request", [4]), ("http", [4, 9]),
    ('http.request.method == "GET"', [4]), ("http.request.method == GET", [4]),
    ('http.host matches "BRO"', [4]),                 # matches is case-insensitive
    ('http.host contains "BRO"', []),                 # contains is not
    ("tcp.port in {79..81}", list(range(1, 15))), ("tcp.port == 0x50", list(range(1, 15))),
    ("tcp.port == 0120", list(range(1, 15))),         # a leading 0 is octal, as in Wireshark
    ("tcp.port not in {80}", []),
    ("tcp.flags.syn == 1 && tcp.flags.ack == 0", [1]), ("tcp.flags.syn == True", [1, 2]),
    ('tcp contains "GET"', [4]), ('frame contains "CHANGES"', [4]),
    ("frame.number <= 2 or http.response", [1, 2, 9]),
    ("http.response.code eq 200 and not tcp.len == 0", [9]),
])
def test_wireshark_meanings(expression: str, frames: list[int]) -> None:
    assert _selected(HTTP_GET, expression) == frames


@needs_captures
def test_a_message_is_on_the_frame_that_completes_it() -> None:
    """The request of http-get.pcap is in one segment; frame 9 completes a response that
    started in frame 6: only frame 9 has http.response, as in Wireshark."""
    assert _selected(HTTP_GET, "http.response") == [9]
    alone = [pkt.no for pkt in osilab.read(HTTP_GET).filter("http.response")]
    assert alone == [6]  # each frame alone: the response's head is in its first segment


# -- the commands ------------------------------------------------------------------------------

@needs_captures
def test_layers_filter_and_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", str(HTTP_GET), "--filter", "http"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "source" in lines[0] and "destination" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["4", "9"]
    assert "141.142.228.5" in lines[1] and "192.150.187.43" in lines[1]


@needs_captures
def test_a_bad_filter_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", str(HTTP_GET), "--filter", "tcp.prot == 80"]) == 1
    err = capsys.readouterr().err
    assert "column 1" in err and "tcp.port" in err and "Traceback" not in err


@needs_captures
def test_flows_http_route_keep_what_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", str(HTTP_GET), "--json", "-Y", "http.request"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["flows", str(HTTP_GET), "--json", "-Y", "udp"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["http", str(HTTP_POST), "--json", "-Y", 'http.request.method == "POST"']) == 0
    assert [json.loads(line)["method"] for line in capsys.readouterr().out.splitlines()] == ["POST"]
    assert main(["http", str(HTTP_POST), "--json", "-Y", 'http.request.method == "GET"']) == 0
    assert capsys.readouterr().out == ""
    assert main(["route", str(HTTP_GET), "--lb", "alb", "--json", "-Y", "http.request"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert main(["route", str(HTTP_GET), "--lb", "alb", "--json", "-Y", "ip.src == 1.2.3.4"]) == 0
    assert capsys.readouterr().out == ""


@needs_captures
def test_show_lists_the_fields_filters_know(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(HTTP_GET), "4", "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    names = {f["name"]: f for lay in detail["layers"] for f in lay["fields"]}
    assert names["ip.src"]["value"] == "141.142.228.5"
    assert (names["ip.src"]["offset"], names["ip.src"]["length"]) == (26, 4)
    assert names["http.request.method"]["value"] == "GET"
    assert all(name in FIELDS for name in names)
    pkt = next(p for p in select_packets(osilab.read(HTTP_GET), "frame.number == 4"))
    for name, field in names.items():  # every field shown is one the filter finds there
        value = field["value"]
        literal = f'"{value}"' if isinstance(value, str) and FIELDS[name].kind == "string" else value
        assert compile_filter(f"{name} == {literal}")(pkt), name
    assert main(["show", str(HTTP_GET), "4", "--colour", "always"]) == 0
    text = capsys.readouterr().out
    assert "Hypertext Transfer Protocol [http]" in text and "\x1b[30;48;2;" in text
    assert main(["show", str(HTTP_GET), "4"]) == 0
    assert "\x1b[" not in capsys.readouterr().out  # not a terminal: plain
