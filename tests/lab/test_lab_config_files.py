"""The balancer configs the lab writes beside each capture, and who may read the lab's code.

``osilab lab record`` writes ``alb.config.json`` / ``nlb.config.json`` into
``captures/<scenario>/`` from :mod:`osilab.lab.configs` (the table HAProxy and nftables
were configured from). The analysis stages read those files instead of importing the lab:
these tests check that the committed files are exactly what the lab renders today (so they
cannot drift from the real balancers' configuration) and that no analysis module imports
:mod:`osilab.lab`, not even lazily inside a function.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from shared_paths import CAPTURES, REPO

from osilab.balancers.config import load_config
from osilab.balancers.config.beside import CONFIG_SUFFIX, config_beside
from osilab.lab.configs import ALB_MTLS_PORT
from osilab.lab.record import SCENARIOS, scenario_configs, write_configs
from osilab.lab.topology import LAB

#: The analysis stages: every one of them reads files, none may import the lab.
ANALYSIS = (
    "capture",
    "streams",
    "protocols",
    "pipeline",
    "balancers",
    "journey",
    "viz",
    "lessons",
)


def _recorded(name: str) -> Path:
    capture = CAPTURES / name / f"{name}.pcapng"
    if not capture.exists():
        pytest.skip(f"the lab capture {capture} is not recorded (osilab lab record)")
    return capture


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_committed_configs_are_what_the_lab_renders(name: str) -> None:
    capture = _recorded(name)
    truth = capture.parent / "truth.json"  # failover: the configs carry the health it recorded
    expected = scenario_configs(
        SCENARIOS[name], truth=json.loads(truth.read_text()) if truth.exists() else None
    )
    for role in ("alb", "nlb"):
        path = config_beside(capture, role)
        if role not in expected:
            assert path is None, f"{name} has no {role.upper()} but {path} exists"
            continue
        assert path is not None, f"{name}: {role}{CONFIG_SUFFIX} is missing: rerun the lab"
        assert json.loads(path.read_text(encoding="utf-8")) == expected[role]
        load_config(path)  # and the models accept it


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_configs_name_the_targets_the_capture_was_recorded_with(name: str) -> None:
    """The targets come from the lab's topology; the recording's topology.json must agree:
    every target is an address of an instance there (the ALB's include the instances'
    secondary addresses, topology.SECONDARY_ADDRESSES), and the instances' primary
    addresses are targets of every balancer (the NLB, L4 and QUIC ones have no other)."""
    capture = _recorded(name)
    recorded = json.loads((capture.parent / "topology.json").read_text(encoding="utf-8"))
    for web in ("web1", "web2"):
        assert recorded["services"][web] == LAB.services[web]
    owned = {ip for host in recorded["hosts"] if host["role"] == "instance"
             for interface in host["interfaces"] for ip in interface["ip"]}  # fmt: skip
    primary = {LAB.services["web1"], LAB.services["web2"]}
    for role, config in scenario_configs(SCENARIOS[name]).items():
        targets = {  # "IP:port" text, or AWS's {"Id": IP, "Port": ...} (QUIC's QuicServerId)
            target["Id"] if isinstance(target, dict) else target.rsplit(":", 1)[0]
            for group in config["TargetGroups"]
            for target in group["Targets"]
        }
        assert primary <= targets <= owned, (role, sorted(targets - owned))
        if role != "alb":
            assert targets == primary, (role, sorted(targets))


def test_roles_follow_the_scenario_and_stale_files_go(tmp_path: Path) -> None:
    (tmp_path / f"nlb{CONFIG_SUFFIX}").write_text("{}")
    written = write_configs(SCENARIOS["alb"], tmp_path)
    assert [p.name for p in written] == [f"alb{CONFIG_SUFFIX}"]
    assert not (tmp_path / f"nlb{CONFIG_SUFFIX}").exists()
    config = json.loads(written[0].read_text())
    mtls = [ALB_MTLS_PORT] if "alb-mtls" in SCENARIOS["alb"].balancers else []
    assert [listener["Port"] for listener in config["Listeners"]] == [80, 443, *mtls]
    assert write_configs(SCENARIOS["l4proxy"], tmp_path) == []
    assert list(tmp_path.iterdir()) == []
    both = write_configs(SCENARIOS["smuggle"], tmp_path)
    assert sorted(p.name for p in both) == [f"alb{CONFIG_SUFFIX}", f"nlb{CONFIG_SUFFIX}"]


def _imports(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """Every module an ``import`` names in ``tree`` (at any depth), with its line."""
    package = module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def test_no_analysis_module_imports_the_lab() -> None:
    offenders = []
    for stage in ANALYSIS:
        for path in sorted((REPO / "osilab" / stage).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, name in _imports(tree, module):
                where = f"{path.relative_to(REPO)}:{line}"
                if (
                    name == "osilab.lab" or name.startswith("osilab.lab.")
                ) and where not in offenders:
                    offenders.append(where)
    assert offenders == [], f"these lines import osilab.lab: {', '.join(offenders)}"


def test_the_import_walk_sees_a_lazy_import() -> None:
    """The walk above must catch an import inside a function, absolute or relative."""
    tree = ast.parse("def f():\n    from ..lab import configs\n    import osilab.lab.truth\n")
    names = {name for _, name in _imports(tree, "osilab.viz.lessons")}
    assert {"osilab.lab", "osilab.lab.configs", "osilab.lab.truth"} <= names
