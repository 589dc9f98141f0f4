"""Configs as teams keep them: find each file's kind, merge them, pick one balancer.

Theory of operation
-------------------
``--config`` may be given several times, and each file may be:

========================  ==========================================================
kind                      recognised by
========================  ==========================================================
``osilab``                a JSON/YAML object with ``Type`` (osilab's own shape)
``aws-cli``               only the top-level keys ``aws elbv2 describe-*`` prints
                          (``LoadBalancers``, ``Listeners``, ``Rules``, ...) or
                          ``aws ec2 describe-instances``' ``Reservations``
``terraform``             a ``.tf`` file
``cloudformation``        ``AWSTemplateFormatVersion`` or ``Resources`` of ``AWS::`` types
========================  ==========================================================

All ``aws-cli`` files together are one description (their records point at each other
by ARN); so are all ``.tf`` files (variables and locals are shared, as in one
Terraform module); each template and each osilab file stands alone. Every
description becomes one osilab dict per load balancer it describes
(:func:`osilab.balancers.config.aws_cli.assemble`); when there are several, ``name``
picks one, and the error lists the names. :func:`parse_config` then checks the chosen
dict exactly as it checks a file written by hand, so every format is held to the
same AWS rules.

This module is the one place that reads these files; the readers it calls
(:mod:`.aws_cli`, :mod:`.terraform`, :mod:`.cloudformation`) work on dicts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osilab.balancers.config import BalancerConfig, parse_config
from osilab.balancers.config.aws_cli import AwsDescription, assemble, from_cli, is_cli_output
from osilab.balancers.config.cloudformation import from_template, is_template
from osilab.balancers.config.readers import read_document
from osilab.balancers.config.terraform import from_terraform
from osilab.errors import ConfigError, RuleError

__all__ = ["KINDS", "Candidate", "detect_kind", "convert_configs", "load_configs"]

#: The kinds of file :func:`detect_kind` tells apart.
KINDS = ("osilab", "aws-cli", "terraform", "cloudformation")

#: ``--lb`` spellings -> the config's ``Type``.
_LB_TYPES = {
    "alb": "application",
    "nlb": "network",
    "application": "application",
    "network": "network",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One load balancer found in the files: its osilab dict and where it came from.

    ``rule_sources`` maps ``"PORT:PRIORITY"`` to the file and resource it was read from,
    so that an AWS rule error names them.
    """

    name: str
    data: Mapping[str, Any]
    source: str
    rule_sources: Mapping[str, str]


def detect_kind(path: str | os.PathLike[str], data: Any) -> str:
    """Which of :data:`KINDS` the document ``data`` read from ``path`` is.

    >>> detect_kind("rules.json", {"Rules": []})
    'aws-cli'
    >>> detect_kind("lb.yaml", {"Type": "application", "TargetGroups": [], "Listeners": []})
    'osilab'
    """
    if Path(path).suffix.lower() == ".tf":
        return "terraform"
    if not isinstance(data, Mapping):
        raise ConfigError("a balancer configuration must be an object", file=str(path))
    if is_template(data):
        return "cloudformation"
    if "Type" in data:
        return "osilab"
    if is_cli_output(data):
        return "aws-cli"
    keys = ", ".join(sorted(map(str, data))) or "none"
    raise ConfigError(
        f"not a balancer configuration osilab knows (top-level keys: {keys}); expected osilab "
        "JSON/YAML (with 'Type'), 'aws elbv2 describe-*' output, a .tf file or a CloudFormation template",
        file=str(path),
    )


def _described(description: AwsDescription, source: str, warnings: list[str]) -> list[Candidate]:
    configs, found, rule_sources = assemble(description)
    warnings.extend(line for line in found.lines if line not in warnings)
    candidates = []
    for config in configs:
        prefix = f"{config['Name']}:"
        own = {k[len(prefix) :]: v for k, v in rule_sources.items() if k.startswith(prefix)}
        candidates.append(Candidate(str(config["Name"]), config, source, own))
    return candidates


def _candidates(paths: Iterable[str | os.PathLike[str]], warnings: list[str]) -> list[Candidate]:
    cli, cli_files = AwsDescription(), []
    terraform: list[tuple[str, Mapping[str, Any]]] = []
    candidates: list[Candidate] = []
    for raw_path in paths:
        path = Path(raw_path)
        data = read_document(path)
        kind = detect_kind(path, data)
        if kind == "osilab":
            name = str(data.get("Name") or data.get("LoadBalancerName") or path.stem)
            candidates.append(Candidate(name, data, str(path), {}))
        elif kind == "aws-cli":
            cli.extend(from_cli(data, str(path)))
            cli_files.append(str(path))
        elif kind == "terraform":
            terraform.append((str(path), data))
        else:
            candidates += _described(from_template(data, str(path)), str(path), warnings)
    if cli_files:
        candidates += _described(cli, ", ".join(cli_files), warnings)
    if terraform:
        candidates += _described(
            from_terraform(terraform), ", ".join(f for f, _ in terraform), warnings
        )
    return candidates


def _pick(candidates: list[Candidate], name: str | None, lb: str | None, files: str) -> Candidate:
    if lb is not None:
        if lb not in _LB_TYPES:
            raise ConfigError(f"lb must be one of {', '.join(_LB_TYPES)}, not {lb!r}")
        wanted = [c for c in candidates if c.data.get("Type") == _LB_TYPES[lb]]
        candidates = wanted or candidates  # none of that type: route converts the other kind
    names = ", ".join(c.name for c in candidates) or "none"
    if name is not None:
        chosen = [c for c in candidates if c.name == name]
        if not chosen:
            raise ConfigError(
                f"no load balancer named {name!r} in {files} (load balancers: {names})"
            )
        candidates = chosen
    if not candidates:
        raise ConfigError(f"{files} describe no load balancer")
    if len(candidates) > 1:
        raise ConfigError(
            f"{files} describe {len(candidates)} load balancers ({names}); choose one with --name NAME"
        )
    return candidates[0]


def convert_configs(
    paths: Iterable[str | os.PathLike[str]], *, name: str | None = None, lb: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The merged osilab config dict of the balancer the files describe, and the warnings.

    ``name`` picks a balancer when the files describe several; ``lb`` (``"alb"``/``"nlb"``)
    prefers the balancers of that type. The dict is checked with :func:`parse_config`
    before it is returned, so it is one that :func:`load_configs` accepts.
    """
    paths = list(paths)
    if not paths:
        raise ConfigError("no configuration file given")
    warnings: list[str] = []
    chosen = _pick(_candidates(paths, warnings), name, lb, ", ".join(map(str, paths)))
    _checked(chosen)
    return dict(chosen.data), warnings


def _checked(candidate: Candidate) -> BalancerConfig:
    """:func:`parse_config` on the candidate, its errors naming the file and the rule's resource.
    Files the config names (a JWKS, a trust store) are relative to its (first) file."""
    try:
        return parse_config(candidate.data, base=Path(candidate.source.split(", ")[0]).parent)
    except RuleError as exc:
        raise ConfigError(f"{_rule_source(candidate, exc)}: {exc}") from None
    except ConfigError as exc:
        raise exc.at(file=candidate.source) from None


def _rule_source(candidate: Candidate, error: RuleError) -> str:
    """The file and resource of the rule ``error`` names: the one listener that fails alone."""
    for listener in candidate.data.get("Listeners", []) or []:
        try:
            parse_config({**candidate.data, "Listeners": [listener]})
        except RuleError as alone:
            if alone.rule == error.rule:
                port = listener.get("Port") if isinstance(listener, Mapping) else None
                return candidate.rule_sources.get(f"{port}:{error.rule}", candidate.source)
        except ConfigError:
            continue
    return candidate.source


def load_configs(
    paths: Iterable[str | os.PathLike[str]], *, name: str | None = None, lb: str | None = None
) -> tuple[BalancerConfig, list[str]]:
    """Read one or more config files of any kind in :data:`KINDS` into one :class:`BalancerConfig`.

    Returns the config and the warning lines (``accepted, not modelled: FIELD (why)``,
    each field once). Errors are :class:`~osilab.errors.ConfigError` naming the file,
    the resource or rule, and the field.
    """
    paths = list(paths)
    if not paths:
        raise ConfigError("no configuration file given")
    warnings: list[str] = []
    chosen = _pick(_candidates(paths, warnings), name, lb, ", ".join(map(str, paths)))
    return _checked(chosen), warnings
