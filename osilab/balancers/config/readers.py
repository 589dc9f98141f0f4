"""The small readers every part of a configuration's check shares.

:class:`Context` carries what one document's check accumulates: the warning lines
(``accepted, not modelled: FIELD (reason)``, each field named once) and the one reader
of the files a configuration names (a JWKS, a trust-store PEM), which refuses URLs
because osilab reads no network. The functions read the AWS value shapes: ``Attributes``
as a list of ``Key``/``Value`` pairs or a dict, booleans as ``"true"``/``"false"``,
numbers within AWS's ranges, objects with only the keys AWS knows. And
:func:`read_document`, the one reader of configuration files themselves (JSON, YAML,
Terraform's HCL2).

This module is a part of :mod:`osilab.balancers.config.parse`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from osilab.balancers.config.aws_cli import Warnings
from osilab.balancers.config.model import attribute_reason
from osilab.errors import ConfigError

__all__ = ["NAMING_KEYS", "Context", "read_document", "attributes", "text", "as_bool", "number",
           "check_keys"]

#: Keys that only name a record (its ARN, its name): accepted without a warning.
NAMING_KEYS = frozenset({"RuleArn", "IsDefault", "ListenerArn", "LoadBalancerArn", "TargetGroupArn",
                         "LoadBalancerName", "LoadBalancerArns"})  # fmt: skip


class Context:
    """What every part of one document's check shares: its warnings and its file reader."""

    def __init__(self, base: Path | None) -> None:
        self.base = base
        self.warnings = Warnings()

    def warn(self, field: str, why: str | None = None) -> None:
        self.warnings.unmodelled(field, why)

    def unused_keys(self, obj: Mapping[str, Any], ignored: Iterable[str], record: str) -> None:
        """Name once each key of ``ignored`` that ``obj`` has and the model does not use."""
        for key in obj:
            if key in ignored and key not in NAMING_KEYS:
                self.warn(f"{record}.{key}")

    def attributes(self, attrs: Mapping[str, str]) -> None:
        """Name once each attribute the model does not use (:data:`~.model.ATTRIBUTES`)."""
        for key in attrs:
            reason = attribute_reason(key)
            if reason is not None:
                self.warn(f"Attributes.{key}", reason)

    def read(self, reference: str, what: str) -> bytes:
        """The bytes of a file a configuration names: a path (relative to the configuration
        file) or a ``file:`` URL. osilab reads no network."""
        parsed = urlparse(reference)
        if parsed.scheme in ("http", "https"):
            raise ConfigError(
                f"{what} {reference!r} is a URL, and osilab reads no network: save the "
                "document to a file and name it (a path relative to the configuration, or a "
                "file: URL)"
            )
        path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(reference)
        if not path.is_absolute() and self.base is not None:
            path = self.base / path
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None


def attributes(obj: Mapping[str, Any], where: str) -> dict[str, str]:
    """``Attributes`` as a dict of strings, from the AWS list form or a plain dict."""
    raw = obj.get("Attributes", {})
    if isinstance(raw, Mapping):
        return {str(k): text(v) for k, v in raw.items()}
    if isinstance(raw, list):
        result = {}
        for item in raw:
            if not isinstance(item, Mapping) or "Key" not in item or "Value" not in item:
                raise ConfigError(f"{where}: each attribute needs 'Key' and 'Value': {item!r}")
            result[str(item["Key"])] = text(item["Value"])
        return result
    raise ConfigError(f"{where}: 'Attributes' must be a list of Key/Value pairs or a dict")


def text(value: Any) -> str:
    """An attribute value as AWS prints it (booleans as ``"true"``/``"false"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_bool(value: str, key: str, where: str) -> bool:
    """An AWS boolean attribute: ``"true"`` or ``"false"``, nothing else."""
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ConfigError(f"{where}: attribute {key} must be 'true' or 'false', not {value!r}")
    return lowered == "true"


def number(value: Any, key: str, where: str, low: float, high: float) -> float:
    """``value`` as a number within AWS's range ``low``-``high`` for ``key``."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a number, not {value!r}") from None
    if not low <= result <= high:
        raise ConfigError(f"{where}: {key} must be between {low:g} and {high:g}, not {result:g}")
    return result


def check_keys(obj: Any, allowed: Iterable[str], where: str) -> Mapping[str, Any]:
    """``obj`` when it is an object with only ``allowed`` keys (a typo must not pass)."""
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: expected an object, got {type(obj).__name__}")
    allowed = set(allowed)
    for key in obj:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown field {key!r} (expected one of {', '.join(sorted(allowed))})"
            )
    return obj


def read_document(path: Path) -> Any:
    """The document in a configuration file: HCL2 for a ``.tf`` file (Terraform), else
    JSON, else YAML, CloudFormation's short tags included. The one reader of configuration
    files: :func:`~osilab.balancers.config.parse.load_config`, the foreign formats'
    :func:`~osilab.balancers.config.formats.load_configs` and the CloudFront distribution
    reader all read through it. Raises
    :class:`~osilab.errors.ConfigError` naming the file (unreadable, or not valid)."""
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the balancer configuration: {exc.strerror}", file=str(path)
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte offset {exc.start})", file=str(path)) from None
    if path.suffix.lower() == ".tf":
        import hcl2  # python-hcl2: a declared dependency, imported only when a .tf is given

        try:
            return hcl2.loads(content)
        except Exception as exc:  # lark's parse errors have no common base  # noqa: BLE001
            one_line = " ".join(str(exc).split())  # lark explains over several lines
            raise ConfigError(f"not valid Terraform (HCL2): {one_line}", file=str(path)) from None
    try:
        return json.loads(content)
    except json.JSONDecodeError as json_error:
        import yaml  # PyYAML: imported only for a file that is not JSON

        # (imported here too: a caller reading JSON configs only never loads it)
        from osilab.balancers.config.cloudformation import read_yaml

        try:
            return read_yaml(content)
        except yaml.YAMLError as exc:
            # A .json file, or any file that starts as JSON does, was meant to be JSON:
            # its JSON error is the one that helps.
            meant_json = path.suffix.lower() == ".json" or content.lstrip().startswith(("{", "["))
            kind = "JSON" if meant_json else "YAML"
            reason = json_error if kind == "JSON" else exc
            one_line = " ".join(str(reason).split())  # YAML explains over several lines
            raise ConfigError(f"not valid {kind}: {one_line}", file=str(path)) from None
