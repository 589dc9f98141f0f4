"""Tables (issue 23 item 1): each table's rows and keys equal the JSON Lines of its command.

The packet table is ``osilab layers --json``, flows ``osilab flows --json``, requests
``osilab http --json``, decisions ``osilab route --json``; the Parquet file ``osilab
export`` writes reads back as the same rows, with typed columns (int64, double, string,
bool, lists and structs), never strings standing in for numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from osilab_cli import run_osilab as _osilab
from shared_paths import CAPTURES

pa = pytest.importorskip("pyarrow", reason="the tables need pyarrow: pip install 'osilab[tables]'")
pq = pytest.importorskip("pyarrow.parquet")

ALB = CAPTURES / "alb" / "alb.pcapng"
KEYLOG = CAPTURES / "alb" / "keylog.txt"
NLB = CAPTURES / "nlb" / "nlb.pcapng"
CDN = CAPTURES / "cdn" / "cdn.pcapng"
CDN_KEYLOG = CAPTURES / "cdn" / "keylog.txt"

#: table, command line of the JSON Lines it must equal (after ``osilab``), expected types.
CASES = [
    ("packets", ["layers", str(ALB), "--json", "--keylog", str(KEYLOG)],
     {"no": pa.int64(), "time": pa.float64(), "length": pa.int64(), "interface": pa.string()}),
    ("flows", ["flows", str(ALB), "--json"],
     {"packets": pa.int64(), "first_time": pa.float64(), "midstream": pa.bool_(),
      "anomalies": pa.list_(pa.string()), "hop": pa.string()}),
    ("requests", ["http", str(ALB), "--json", "--keylog", str(KEYLOG)],
     {"status": pa.int64(), "headers_complete_packet": pa.int64(), "time": pa.float64(),
      "method": pa.string()}),
    ("decisions", ["route", str(NLB), "--lb", "nlb", "--json"],
     {"decided_at": pa.int64(), "seen": pa.list_(pa.string()), "target": pa.string()}),
    ("decisions", ["route", str(ALB), "--lb", "alb", "--json", "--keylog", str(KEYLOG)],
     {"decided_at": pa.int64(), "seen": pa.list_(pa.string()), "request_index": pa.int64()}),
    # With --filter, the table keeps exactly the rows the command's own --filter keeps.
    ("packets", ["layers", str(ALB), "--json", "--filter", "http.request"], {"no": pa.int64()}),
    ("flows", ["flows", str(ALB), "--json", "--filter", "tcp.dstport == 443"],
     {"packets": pa.int64()}),
    ("requests", ["http", str(ALB), "--json", "--keylog", str(KEYLOG), "--filter",
                  'http.request.method == "POST"'], {"status": pa.int64()}),
    ("decisions", ["route", str(ALB), "--lb", "alb", "--json", "--filter", "tcp.dstport == 80"],
     {"decided_at": pa.int64()}),
    # Every model route has, and route's choice of hop passed through.
    ("decisions", ["route", str(CDN), "--lb", "cdn", "--json", "--keylog", str(CDN_KEYLOG)],
     {"decided_at": pa.int64(), "cache": pa.string(), "cached_bytes": pa.int64()}),
    ("decisions", ["route", str(ALB), "--lb", "alb", "--json", "--hop", "alb-web1"],
     {"decided_at": pa.int64(), "hop": pa.string()}),
]  # fmt: skip



def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _without_nulls(row: dict) -> dict:
    """A JSON object leaves a key out where a table has a null: compare the rest."""
    return {k: v for k, v in row.items() if v is not None}


@pytest.mark.slow
@pytest.mark.parametrize(("table", "command", "types"), CASES, ids=[" ".join(c[1][:1]) + "-" + c[0] + str(i) for i, c in enumerate(CASES)])
def test_export_equals_the_json_lines(tmp_path: Path, table: str, command: list[str], types: dict) -> None:
    listed = _osilab(*command)
    assert listed.returncode == 0, listed.stderr
    expected = [json.loads(line) for line in listed.stdout.splitlines()]
    assert expected, f"{command} listed nothing"
    out = tmp_path / f"{table}.parquet"
    extra = command[2:]
    extra = [a for a in extra if a != "--json"]
    exported = _osilab("export", command[1], "--table", table, "--out", str(out), *extra)
    assert exported.returncode == 0, exported.stderr
    read = pq.read_table(out)
    keys = set().union(*(row.keys() for row in expected))
    assert set(read.column_names) == keys
    rows = read.to_pylist()
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert _same(_without_nulls(got), _without_nulls(want)), (got, want)
    for key, kind in types.items():
        assert read.schema.field(key).type == kind, key


def test_python_tables_equal_the_command_rows() -> None:
    """``Capture.to_arrow()``/``to_pandas()`` and the stage tables give the same rows the
    commands write (packets dissected alone: ``layers --no-streams``)."""
    import osilab
    from osilab.pipeline.tables import request_rows
    from osilab.streams.tables import flow_rows

    cap = osilab.read(ALB)
    listed = _osilab("layers", str(ALB), "--json", "--no-streams")
    want = [json.loads(line) for line in listed.stdout.splitlines()]
    got = cap.to_arrow().to_pylist()
    assert [_without_nulls(r) for r in got] == [_without_nulls(r) for r in want]
    frame = cap.to_pandas()
    assert str(frame["no"].dtype) == "Int64" and str(frame["time"].dtype) == "Float64"
    assert len(frame) == len(want) == len(cap)
    flows = flow_rows(cap).to_pandas()
    assert str(flows["packets"].dtype) == "Int64" and str(flows["midstream"].dtype) == "boolean"
    requests = request_rows(cap, keylog=str(KEYLOG)).to_arrow()
    assert requests.schema.field("desync").type == pa.struct(
        [("class", pa.string()), ("reason", pa.string())]
    )
    assert requests.num_rows == len(_osilab("http", str(ALB), "--json", "--keylog", str(KEYLOG)).stdout.splitlines())


def test_decision_rows_in_python_equal_route_json() -> None:
    """The balancers stage's table (a replay in Python) has route's rows (NLB, lab config)."""
    import osilab
    from osilab.balancers.config import load_config
    from osilab.balancers.tables import decision_rows

    cap = osilab.read(NLB).on_interface(0)
    balancer = osilab.NetworkLoadBalancer(load_config(str(NLB.parent / "nlb.config.json")),
                                          keep_decisions=0)  # fmt: skip
    rows = list(decision_rows(cap, balancer))
    want = [json.loads(line) for line in _osilab("route", str(NLB), "--lb", "nlb", "--json").stdout.splitlines()]
    assert [r["target"] for r in rows] == [w["target"] for w in want]
    assert {k for r in rows for k in r} == {k for w in want for k in w}


@pytest.mark.parametrize(("out", "message"), [
    ("x.csv", "extension"),
    ("x.parquet", None),
    ("x.arrow", None),
])  # fmt: skip
def test_export_formats(tmp_path: Path, out: str, message: str | None) -> None:
    done = _osilab("export", str(ALB), "--table", "flows", "--out", str(tmp_path / out))
    if message is None:
        assert done.returncode == 0, done.stderr
        assert (tmp_path / out).stat().st_size > 0
    else:
        assert done.returncode == 1 and message in done.stderr


def test_decisions_need_a_balancer(tmp_path: Path) -> None:
    done = _osilab("export", str(ALB), "--table", "decisions", "--out", str(tmp_path / "d.parquet"))
    assert done.returncode == 1 and "--lb" in done.stderr


def test_readme_duckdb_query_counts_requests_per_host(tmp_path: Path) -> None:
    """The README's query, over two exported captures, counts what ``http --json`` lists."""
    duckdb = pytest.importorskip("duckdb", reason="the README's query needs duckdb (pip install duckdb)")
    exports = tmp_path / "exports"
    exports.mkdir()
    want: dict[str, int] = {}
    for name, path, keylog in (("alb", ALB, KEYLOG), ("nlb", NLB, None)):
        extra = ["--keylog", str(keylog)] if keylog else []
        assert _osilab("export", str(path), "--table", "requests", "--out",
                       str(exports / f"{name}.parquet"), *extra).returncode == 0  # fmt: skip
        for line in _osilab("http", str(path), "--json", *extra).stdout.splitlines():
            host = json.loads(line)["host"]
            want[host] = want.get(host, 0) + 1
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    query = next(line for line in readme.splitlines() if "FROM 'exports/*.parquet'" in line)
    sql = query[query.index("SELECT"): query.rindex('"')]
    got = dict(duckdb.sql(sql.replace("exports/", f"{exports}/")).fetchall())
    assert got == want
