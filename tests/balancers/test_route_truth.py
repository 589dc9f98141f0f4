"""``route`` and ``compare`` tell the truth on the lab's captures, from the configs teams keep.

The oracle is the lab's own record of what the real balancers did (captures/*/truth.json:
HAProxy's log line per request, the first SYN of each connection on the NLB's back side).
With no ``--config`` the commands must replay only the hop where clients reach the
balancer (topology.json), use the config the lab wrote beside the capture, and land every
request (ALB) or connection (NLB) where the real balancer sent it. The same rules written
as AWS CLI output, Terraform and CloudFormation must route the capture exactly as the
osilab JSON does. Each decision's ``seen`` lists what it read, in the order it read it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from balancers.balancer_helpers import alb_config, flow, request, rule
from shared_paths import CAPTURES, REPO

import osilab
from osilab.balancers import ApplicationLoadBalancer, replay
from osilab.balancers.compare import servers_by_hop
from osilab.balancers.config.formats import load_configs
from osilab.balancers.hop import choose_hop
from osilab.cli import main
from osilab.errors import UsageError
from osilab.protocols.messages import DesyncVerdict

CONFIGS = Path(__file__).parent / "configs"
FORMATS = {
    "aws-cli": sorted((CONFIGS / "aws-cli").glob("*.json")),
    "terraform": sorted((CONFIGS / "terraform").glob("*.tf")),
    "cloudformation": sorted((CONFIGS / "cloudformation").glob("*")),
}
ALB = CAPTURES / "alb" / "alb.pcapng"
NLB = CAPTURES / "nlb" / "nlb.pcapng"
KEYLOG = CAPTURES / "alb" / "keylog.txt"
RULE_NAMES = {"1": "host", "2": "header", "3": "method", "4": "query", "5": "source", "6": "path"}


def _lab(path: Path) -> tuple[Path, dict]:
    truth = path.parent / "truth.json"
    if not path.exists() or not truth.exists():
        pytest.skip(f"the lab capture {path} is not recorded (osilab lab record)")
    return path, json.loads(truth.read_text())


def _run(argv: list[str]) -> tuple[int, list[dict], str]:
    """``osilab ARGV --json``: exit code, the JSON objects, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--json"])
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def _rid(decision: dict) -> str | None:
    """The request id the lab's client puts in every URL (``?rid=a0001``); HAProxy logs it."""
    found = re.search(r"[?&]rid=([a-z]\d+)", decision.get("request") or "")
    return found.group(1) if found else None


def _by_request(objects: list[dict]) -> dict[str, tuple]:
    return {_rid(d): (d["rule"], d["target_group"], d["target"]) for d in objects}


@pytest.fixture(scope="module")
def alb_route() -> tuple[list[dict], str]:
    path, _ = _lab(ALB)
    code, objects, err = _run(["route", str(path), "--lb", "alb", "--keylog", str(KEYLOG)])
    assert code == 0, err
    return objects, err


# ------------------------------------------------------------------ the truth, no --config


def test_route_alb_without_config_gives_haproxys_requests(alb_route) -> None:
    objects, err = alb_route
    _, truth = _lab(ALB)
    requests = truth["requests"]
    assert f"using the lab's config beside the capture: {ALB.parent / 'alb.config.json'}" in err
    assert {d["hop"] for d in objects} == {"client-alb"}  # one hop: not the back side's copies
    got = {_rid(d): d for d in objects}
    assert len(objects) == len(got) == len(requests)  # every request once, none more
    wrong = [
        (rid, (RULE_NAMES.get(d["rule"], d["rule"]), d["target_group"], d["target"]), real)
        for rid, d in got.items()
        for real in [requests.get(rid or "")]
        if real is None
        or (RULE_NAMES.get(d["rule"], d["rule"]), d["target_group"], d["target"])
        != (real["rule"], real["target_group"], real["target"])
    ]
    print(f"\nmeasured: route --lb alb, no --config: {len(objects) - len(wrong)}/{len(requests)} "
          "requests on HAProxy's rule, target group and target")  # fmt: skip
    assert wrong == []


def test_route_nlb_without_config_gives_nftables_targets() -> None:
    path, truth = _lab(NLB)
    code, objects, err = _run(["route", str(path), "--lb", "nlb"])
    assert code == 0, err
    assert "using the lab's config beside the capture" in err
    connections = truth["connections"]
    by_client = {d["flow"].split("-")[0]: d for d in objects}
    assert len(objects) == len(by_client) == len(connections)  # one decision per connection
    assert {d["hop"] for d in objects} == {"client-nlb"}
    wrong = [
        (c["client"], c["target"], by_client.get(c["client"], {}).get("target"))
        for c in connections
        if by_client.get(c["client"], {}).get("target", "").split(":")[0]
        != c["target"].split(":")[0]
    ]
    print(f"\nmeasured: route --lb nlb, no --config: {len(connections) - len(wrong)}/"
          f"{len(connections)} connections on nftables' target")  # fmt: skip
    assert wrong == []


def test_compare_counts_the_requests_the_client_sent() -> None:
    path, truth = _lab(ALB)
    code, rows, err = _run(["compare", str(path), "--keylog", str(KEYLOG)])
    assert code == 0, err
    assert len(rows) == len({_rid(r) for r in rows}) == len(truth["requests"])
    agree = sum(r["alb_target"] == truth["requests"][_rid(r)]["target"] for r in rows)
    print(f"\nmeasured: compare, no --config: {agree}/{len(truth['requests'])} requests on "
          "HAProxy's target")  # fmt: skip
    assert agree == len(rows)
    real = Counter(v["target"] for v in truth["requests"].values())
    assert Counter(r["alb_target"] for r in rows) == real  # per target, as truth.json counts


def test_routing_by_url_lands_on_targets_of_its_own(alb_route) -> None:
    """The lab gives every target group targets of its own (the instances' secondary
    addresses, osilab/lab/topology.py): a request a rule won reaches an address the
    default group never does. The counts per target group and per target are truth.json's,
    and route's agree with them."""
    objects, _ = alb_route
    _, truth = _lab(ALB)
    real = Counter((v["target_group"], v["target"]) for v in truth["requests"].values())
    assert Counter((d["target_group"], d["target"]) for d in objects) == real
    groups: dict[str, set[str]] = defaultdict(set)
    for group, target in real:
        groups[group].add(target)
    assert len(groups) == len(RULE_NAMES) + 1  # every rule won a request, and the default
    for group, targets in groups.items():
        others = set().union(*(t for name, t in groups.items() if name != group))
        assert not targets & others, (group, sorted(targets & others))
    counts = ", ".join(f"{group} {target} {n}" for (group, target), n in sorted(real.items()))
    print(f"\nmeasured: truth.json per target group and target: {counts}")


def test_the_keylog_is_used_only_when_named(alb_route) -> None:
    """keylog.txt lies beside the capture, but without --keylog HTTPS stays encrypted."""
    path, truth = _lab(ALB)
    code, objects, _ = _run(["route", str(path), "--lb", "alb"])
    assert code == 0
    assert objects and all(d["flow"].endswith(":80") for d in objects)
    assert len(objects) < len(truth["requests"])
    assert any(d["flow"].endswith(":443") for d in alb_route[0])  # with --keylog: decrypted


# ------------------------------------------------------------------ each format, the same routing


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_each_config_format_routes_as_the_osilab_json(kind: str, alb_route) -> None:
    files = FORMATS[kind]
    assert files, f"no {kind} fixtures in {CONFIGS}"
    path, _ = _lab(ALB)
    argv = ["route", str(path), "--lb", "alb", "--keylog", str(KEYLOG), "--config", *map(str, files)]
    code, objects, err = _run(argv)
    assert code == 0, err
    assert "beside the capture" not in err  # --config wins over the lab's file
    # The fixtures describe the :80/:443 listeners; the lab's mTLS listener (truth.json
    # "mtls", test_mtls_capture.py) is only in the lab's own config, so its requests go.
    mtls = set(json.loads((path.parent / "truth.json").read_text()).get("mtls", {}).get("requests", []))
    lab_only = {rid: v for rid, v in _by_request(alb_route[0]).items() if rid not in mtls}
    assert _by_request([d for d in objects if _rid(d) not in mtls]) == lab_only
    # each unmodelled field named once, the same lines load_configs returns
    _, warnings = load_configs(files, lb="alb")
    lines = [line for line in err.splitlines() if "accepted, not modelled" in line]
    assert lines == [f"osilab: {w}" for w in warnings] and len(set(lines)) == len(lines)


def test_warnings_are_kept_on_the_replay() -> None:
    path, _ = _lab(ALB)
    config, warnings = load_configs(FORMATS["aws-cli"], lb="alb")
    assert warnings and all(w.startswith("accepted, not modelled: ") for w in warnings)
    result = replay(osilab.read(path), ApplicationLoadBalancer(config), interface=0,
                    keylog=str(KEYLOG), warnings=warnings)  # fmt: skip
    assert result.warnings == tuple(warnings)
    truth = json.loads((path.parent / "truth.json").read_text())
    mtls = len(truth.get("mtls", {}).get("requests", []))  # :8443 is not in the fixtures
    assert result.total == len(truth["requests"])
    assert result.routed == result.total - mtls == result.total - result.accounting.get("not-routable", 0)


# ------------------------------------------------------------------ the hop


def _topology(name: str) -> dict:
    path = CAPTURES / name / "topology.json"
    if not path.exists():
        pytest.skip(f"{path} is not recorded")
    return json.loads(path.read_text())


def _hops(name: str) -> list[str]:
    return [h["interface"] for h in _topology(name)["hops"]]


@pytest.mark.parametrize(
    ("scenario", "lb", "front", "back"),
    [
        ("alb", "alb", "client-alb", {"alb-web1", "alb-web2"}),
        ("nlb", "nlb", "client-nlb", {"nlb-web1", "nlb-web2"}),
        ("smuggle", "alb", "client-alb", {"alb-web1", "alb-web2"}),
        ("smuggle", "nlb", "client-nlb", {"nlb-web1", "nlb-web2"}),
        # no ALB in the l4proxy scenario: the single client-facing balancer link
        ("l4proxy", "alb", "client-l4p", {"l4p-web1", "l4p-web2"}),
        ("alb", "nlb", "client-alb", {"alb-web1", "alb-web2"}),
    ],
)
def test_the_balancers_hop_from_the_topology(scenario, lb, front, back) -> None:
    hops = _hops(scenario)
    choice = choose_hop(hops, _topology(scenario), lb)
    assert (choice.name, choice.interface) == (front, hops.index(front))
    assert {hops[i] for i in choice.back} == back


@pytest.mark.parametrize(
    ("hops", "topology", "lb", "options", "words"),
    [
        (["if0", "if1"], None, "alb", {}, ["2 interfaces", "0 if0, 1 if1", "--hop", "--interface"]),
        (["a", "b"], None, "alb", {"hop": "c"}, ["no hop named 'c'", "0 a, 1 b"]),
        (["a", "b"], None, "alb", {"interface": 2}, ["no interface 2", "0 a, 1 b"]),
        (["a", "b"], None, "alb", {"hop": "a", "interface": 0}, ["not both"]),
        ("smuggle", "smuggle", None, {}, ["several hops", "client-alb", "client-nlb"]),
    ],
)
def test_hop_errors_list_the_interfaces(hops, topology, lb, options, words) -> None:
    if hops == "smuggle":
        hops, topology = _hops("smuggle"), _topology("smuggle")
    with pytest.raises(UsageError) as caught:
        choose_hop(hops, topology, lb, **options)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_one_interface_is_replayed_whole_and_options_choose_a_hop() -> None:
    assert choose_hop(["if0"], None, "alb").interface is None
    assert choose_hop(["a", "b"], None, "alb", hop="b").interface == 1
    assert choose_hop(["a", "b"], None, "alb", interface=0).name == "a"


def test_a_foreign_multi_interface_capture_must_name_its_hop(tmp_path) -> None:
    path, _ = _lab(ALB)
    foreign = tmp_path / "mine.pcapng"
    shutil.copy(path, foreign)  # no topology.json, no config beside it
    code, objects, err = _run(["route", str(foreign), "--lb", "alb"])
    assert code == 1 and not objects
    assert "0 client-alb, 1 alb-web1" in err and "--hop NAME or --interface N" in err
    code, objects, err = _run(["route", str(foreign), "--lb", "alb", "--hop", "client-alb",
                               "--keylog", str(KEYLOG)])  # fmt: skip
    assert code == 0, err
    defaults = [line for line in err.splitlines() if "built from the capture" in line]
    assert len(defaults) == 1  # one warning line says so
    shown = {f"{ip}:{port}" for ip, port, _ in servers_by_hop(osilab.read(foreign))[0]}
    assert objects and {d["target"] for d in objects} <= shown  # nothing invented
    assert {d["hop"] for d in objects} == {"client-alb"}


def test_the_default_uses_the_back_side_when_the_capture_holds_it() -> None:
    """The l4proxy scenario has no ALB config beside it: targets are what its back side reached."""
    path = CAPTURES / "l4proxy" / "l4proxy.pcapng"
    if not path.exists():
        pytest.skip(f"{path} is not recorded")
    code, objects, err = _run(["route", str(path), "--lb", "nlb"])
    assert code == 0, err
    assert sum("built from the capture" in line for line in err.splitlines()) == 1
    hops = _hops("l4proxy")
    by_hop = servers_by_hop(osilab.read(path))
    back = {f"{ip}:{port}" for hop in ("l4p-web1", "l4p-web2") for ip, port, _ in by_hop[hops.index(hop)]}
    assert objects and {d["target"] for d in objects} <= back
    assert "192.0.2.13:80" not in {d["target"] for d in objects}


# ------------------------------------------------------------------ the README's five lines


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- readme-example: configs[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no configs example block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_example_runs(tmp_path) -> None:
    _lab(ALB)
    commands = _readme_commands()
    assert len(commands) == 5
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        # run from the repository (the paths are relative); my-alb.json lands in tmp_path
        line = command.replace("> my-alb.json", f"> {shlex.quote(str(tmp_path / 'my-alb.json'))}")
        line = line.replace("--alb-config my-alb.json", f"--alb-config {tmp_path / 'my-alb.json'}")
        done = subprocess.run(["bash", "-c", line], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ seen is honest


def _path(*values: str) -> dict:
    return {"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}


def _host(*values: str) -> dict:
    return {"Field": "host-header", "HostHeaderConfig": {"Values": list(values)}}


REDIRECT = [{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443",
                                                    "StatusCode": "HTTP_301"}}]  # fmt: skip
STICKY = [{"Name": "web", "Targets": ["192.0.2.11:80"], "Stickiness": "lb_cookie"},
          {"Name": "api", "Targets": ["192.0.2.13:80"]}]  # fmt: skip
AMBIGUOUS = DesyncVerdict("Severe", "BothTeClPresent", "")


@pytest.mark.parametrize(
    ("rules", "groups", "req", "seen"),
    [
        # the listener is chosen by the destination port: the first thing every decision reads
        ([], None, request("/api/x", on=flow(server_port=8080)), ("tcp.dstport",)),
        # no rules: the default rule, nothing of the request read
        ([], None, request("/api/x"), ("tcp.dstport",)),
        # a path rule evaluated: the path is listed, whether it matched ...
        ([rule("1", [_path("/api/*")])], None, request("/api/x"),
         ("tcp.dstport", "http.request.uri.path")),
        # ... or not
        ([rule("1", [_path("/api/*")])], None, request("/web"),
         ("tcp.dstport", "http.request.uri.path")),
        # rules in priority order: the host of rule 1, then the path of rule 2
        ([rule("2", [_path("/api/*")]), rule("1", [_host("admin.example")])], None,
         request("/api/x"), ("tcp.dstport", "http.host", "http.request.uri.path")),
        # AND stops at the first failing condition: the path was never read
        ([rule("1", [_host("admin.example"), _path("/api/*")])], None, request("/api/x"),
         ("tcp.dstport", "http.host")),
        # a redirect copies host, path and query into its Location
        ([rule("1", [_path("/old/*")], REDIRECT)], None, request("/old/a?x=1"),
         ("tcp.dstport", "http.request.uri.path", "http.host", "http.request.uri.query")),
        # lb_cookie stickiness reads the cookie after the rules chose the group
        ([rule("1", [_path("/api/*")])], STICKY, request("/web"),
         ("tcp.dstport", "http.request.uri.path", "http.cookie")),
        # blocked by desync mitigation before any rule ran
        ([rule("1", [_path("/api/*")])], None, request("/api/x", desync=AMBIGUOUS),
         ("tcp.dstport", "http.request.line", "http.request.headers")),
    ],
    ids=["no-listener", "no-rules", "path-matched", "path-missed", "priority-order",
         "and-stops", "redirect", "sticky", "blocked"],  # fmt: skip
)
def test_seen_lists_what_the_decision_read_in_order(rules, groups, req, seen) -> None:
    alb = ApplicationLoadBalancer(alb_config(rules, groups))
    assert alb.request(req).seen == seen


def test_seen_on_the_lab_capture_names_the_path_when_a_path_rule_ran(alb_route) -> None:
    objects, _ = alb_route
    path_rule = [d for d in objects if d["rule"] == "6"]
    assert path_rule and all(d["seen"][0] == "tcp.dstport" for d in objects)
    assert all(d["seen"][-1] == "http.request.uri.path" for d in path_rule)
    host_rule = [d for d in objects if d["rule"] == "1"]
    assert host_rule and all(d["seen"] == ["tcp.dstport", "http.host"] for d in host_rule)
