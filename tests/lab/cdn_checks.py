"""The ``cdn`` scenario's promises: the real edge did what the plan says, and the model agrees.

Shared by the test on the committed ``captures/cdn`` and the root-only re-recording.
Three witnesses per request: the client (the ``X-Cache`` it received), the edge's own
access log (``truth.json``), and tshark reading the decrypted viewer leg; the back side
(the static origin's log, HAProxy's log) says which origin each request reached.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from lab.lab_checks import Scenario, tshark

import osilab
from osilab.balancers.cdn import CdnDecision, CloudFrontDistribution
from osilab.balancers.config.beside import config_beside
from osilab.lab.cdn import ALB_ORIGIN, STATIC_ORIGIN, parse_origin


def model_decisions(scenario: Scenario) -> dict[str, CdnDecision]:
    """The edge model's decision per request id, on the viewers' hop (client-edge)."""
    capture = osilab.read(scenario.capture)
    capture.hop_name(0)
    hops = [capture.hop_name(i) for i in range(len(capture.interfaces))]
    config = config_beside(scenario.capture, "cdn")
    assert config is not None, "no cdn.config.json beside the capture"
    edge = CloudFrontDistribution(config, keep_decisions=None)
    result = osilab.replay(capture, edge, keylog=str(scenario.folder / "keylog.txt"),
                           interface=hops.index("client-edge"))  # fmt: skip
    found: dict[str, CdnDecision] = {}
    for decision in result.decisions:
        assert isinstance(decision, CdnDecision) and decision.request is not None
        found[decision.request.header("x-request-id") or "?"] = decision
    return found


def agreement(scenario: Scenario) -> dict[str, Any]:
    """Per field, how many requests the model and the real edge agree on (and the misses)."""
    truth = scenario.truth["requests"]
    model = model_decisions(scenario)
    counts: Counter[str] = Counter()
    misses: list[str] = []
    for rid, real in truth.items():
        decision = model.get(rid)
        if decision is None:
            misses.append(f"{rid}: no model decision")
            continue
        reached = decision.target_group if decision.target is not None else None
        pairs = {"cache": (decision.cache, real["cache"]),
                 "behavior": (decision.behavior, real["behavior"]),
                 "origin": (decision.origin, real["origin"] or decision.origin),
                 "reached": (reached, real["reached"])}  # fmt: skip
        for field, (mine, theirs) in pairs.items():
            if mine == theirs:
                counts[field] += 1
            else:
                misses.append(f"{rid} {field}: model {mine!r}, real {theirs!r}")
    return {"requests": len(truth), "agree": dict(counts), "misses": misses}


def check_cdn_plan(scenario: Scenario) -> None:
    """The client received the X-Cache its plan expects, and the edge's log says the same."""
    truth = scenario.truth["requests"]
    assert len(scenario.client) == len(truth) > 15
    for record in scenario.client:
        extra = record["extra"]
        assert extra["x_cache"] == extra["expected"], (record["rid"], record["note"], extra)
        assert f"{truth[record['rid']]['cache']} from cloudfront" == extra["x_cache"], record["rid"]
    caches = Counter(r["cache"] for r in truth.values())
    assert set(caches) == {"Hit", "Miss", "RefreshHit", "Redirect", "Error"}, caches


def check_cdn_model(scenario: Scenario) -> None:
    """The model agrees with the real cache on every request: cache status, behavior,
    origin, and which origin (if any) the request reached."""
    result = agreement(scenario)
    assert not result["misses"], result["misses"]
    assert all(n == result["requests"] for n in result["agree"].values()), result


def check_cdn_back_side(scenario: Scenario) -> None:
    """Which requests reached which origin, from the back side itself: the static origin's
    log and HAProxy's log hold exactly the requests the edge did not answer."""
    truth = scenario.truth["requests"]
    at_s3 = {row["rid"] for row in parse_origin(scenario.log("cdn-s3"))}
    at_alb = {row.split("rid=")[1].split()[0] for row in scenario.log("haproxy-alb").splitlines()
              if "rid=" in row}  # fmt: skip
    assert at_s3 == {r for r, v in truth.items() if v["reached"] == STATIC_ORIGIN}
    assert at_alb == {r for r, v in truth.items() if v["reached"] == ALB_ORIGIN}
    answered = {r for r, v in truth.items() if v["cache"] in ("Hit", "Redirect", "Error")}
    assert answered and not answered & (at_s3 | at_alb), (
        "a request the edge answered reached an origin"
    )


def check_cdn_origin_requests(scenario: Scenario) -> None:
    """What the static origin received is what the model says the edge sends: Host, Via,
    X-Forwarded-For, the whitelisted cookie, and If-None-Match on a revalidation."""
    model = model_decisions(scenario)
    rows = parse_origin(scenario.log("cdn-s3"))
    assert rows
    for row in rows:
        headers = dict(model[row["rid"]].headers_to_target)
        assert row["host"] == headers["Host"], row
        assert row["via"] == headers["Via"], row
        assert row["xff"] == headers["X-Forwarded-For"], row
        assert row["ua"] == headers["User-Agent"], row
        assert (row["cookie"] if row["cookie"] != "-" else None) == headers.get("Cookie"), row
        assert (row["inm"] if row["inm"] != "-" else None) == headers.get("If-None-Match"), row
        assert (row["ims"] if row["ims"] != "-" else None) == headers.get("If-Modified-Since"), row
        line = model[row["rid"]].request_line_to_target
        assert row["request"] == line, (row["request"], line)


def check_cdn_tshark(scenario: Scenario) -> int:
    """tshark, decrypting the viewer leg with the key log, reads the same requests (id, method,
    URI) as osilab's edge model and the same X-Cache the edge's log names."""
    rows = tshark(scenario.capture, "-o", f"tls.keylog_file:{scenario.folder / 'keylog.txt'}",
                  "-Y", 'frame.interface_name == "client-edge" && http', "-T", "fields",
                  "-e", "http.request.method", "-e", "http.request.uri", "-e", "http.request.line",
                  "-e", "http.response.line")  # fmt: skip
    requests, x_caches = [], []
    for method, uri, request_lines, response_lines in (r + [""] * (4 - len(r)) for r in rows):
        if method:
            rid = next(line.split(":", 1)[1].removesuffix("\\r\\n").strip()
                       for line in request_lines.split(",")
                       if line.lower().startswith("x-request-id:"))  # fmt: skip
            requests.append((rid, method, uri))
        for line in response_lines.split(","):
            if line.lower().startswith("x-cache:"):
                x_caches.append(line.split(":", 1)[1].removesuffix("\\r\\n").strip())
    model = model_decisions(scenario)
    mine = [(rid, d.request.method, d.request.target) for rid, d in model.items() if d.request]
    assert sorted(requests) == sorted(mine)
    truth = scenario.truth["requests"]
    real = [f"{truth[rid]['cache']} from cloudfront" for rid, _m, _u in requests]
    assert Counter(x_caches) == Counter(real)
    return len(requests)
