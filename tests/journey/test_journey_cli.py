"""``osilab journey``: the table, the layers, JSON Lines, the HTML file and the errors."""

from __future__ import annotations

import json

import pytest

from osilab.cli import main


def test_table_and_html(synthetic, tmp_path, capsys):
    out = tmp_path / "trip.html"
    assert main(["journey", str(synthetic["alb"]), "--request", "r0001", "--html", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("request r0001: 23 events: client -> alb -> web1 -> api1")
    assert "db" in printed and f"wrote {out}" in printed
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_json_lines(synthetic, capsys):
    assert main(["journey", str(synthetic["nlb"]), "--request", "r0101", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["index"] for line in lines] == list(range(len(lines)))
    nlb = next(line for line in lines if line["role"] == "nlb")
    assert nlb["stopped_at"] == 4 and [step["osi"] for step in nlb["in"]] == [1, 2, 3, 4]
    assert all(line["request_id"] == "r0101" for line in lines)


def test_layers_text(synthetic, capsys):
    assert main(["journey", str(synthetic["alb"]), "--request", "r0003", "--layers"]) == 0
    printed = capsys.readouterr().out
    assert "in  L7 http  stop" in printed and "why:" in printed


def test_list(synthetic, capsys):
    assert main(["journey", str(synthetic["alb"]), "--list"]) == 0
    assert capsys.readouterr().out.split() == ["r0001", "r0002", "r0003"]


def test_compare_html(synthetic, tmp_path, capsys):
    out = tmp_path / "both.html"
    argv = [
        "journey",
        str(synthetic["alb"]),
        "--request",
        "r0002",
        "--html",
        str(out),
        "--compare",
        str(synthetic["nlb"]),
        "--compare-request",
        "r0101",
    ]
    assert main(argv) == 0
    text = out.read_text(encoding="utf-8")
    assert (
        text.count("data-osj ") == 2
        and "layer 4 (Transport)" in text
        and "layer 7 (Application)" in text
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--request", "nope"], "no HTTP request with id 'nope'"),
        (["--compare", "x.pcapng"], "--compare needs --html"),
    ],
)
def test_errors_are_one_line(synthetic, capsys, argv, message):
    assert main(["journey", str(synthetic["alb"]), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_file(tmp_path, capsys):
    assert main(["journey", str(tmp_path / "none.pcapng")]) == 1
    assert "no such capture file" in capsys.readouterr().err
