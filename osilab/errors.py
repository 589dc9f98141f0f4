"""One error tree for all of osilab.

Every error osilab raises on purpose is an :class:`OsilabError`. Each subclass keeps
its facts as attributes (the file, the packet number, the byte offset, the rule...)
and builds its message from them, so a message always says *where* the problem is.

The file name and packet number are often unknown where a problem is first found
(a dissector sees only bytes). They are added at the one boundary that knows them,
with :meth:`OsilabError.at`.

Tree::

    OsilabError
    ├── CaptureError      the file itself: not a capture, truncated, bad block
    ├── DecodeError       a packet's bytes do not fit the protocol
    ├── ConfigError       a configuration or data file is malformed
    │   └── RuleError     an AWS listener rule breaks an AWS rule or limit
    ├── LabError          the recording lab cannot run (missing tools, not root)
    └── UsageError        a caller asked for something that does not exist
"""

from __future__ import annotations

__all__ = [
    "OsilabError",
    "CaptureError",
    "DecodeError",
    "ConfigError",
    "RuleError",
    "LabError",
    "UsageError",
]


class OsilabError(Exception):
    """The root of every error osilab raises on purpose.

    Attributes:
        reason: what is wrong, in a sentence.
        file: the capture file, when known.
        packet: the 1-based packet (frame) number, when known.
        offset: the byte offset in the file (or in the frame for DecodeError), when known.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        packet: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.packet = packet
        self.offset = offset
        super().__init__(self._message())

    def _where(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(str(self.file))
        if self.packet is not None:
            parts.append(f"packet {self.packet}")
        if self.offset is not None:
            parts.append(f"byte offset {self.offset}")
        return ", ".join(parts)

    def _message(self) -> str:
        where = self._where()
        return f"{where}: {self.reason}" if where else self.reason

    def at(self, *, file: str | None = None, packet: int | None = None) -> OsilabError:
        """Add the facts only an outer boundary knows; returns ``self`` for ``raise e.at(...)``."""
        if file is not None and self.file is None:
            self.file = file
        if packet is not None and self.packet is None:
            self.packet = packet
        self.args = (self._message(),)
        return self

    def __str__(self) -> str:
        return self._message()


class CaptureError(OsilabError):
    """The capture file cannot be read here: not a capture, a cut header, a bad block."""


class DecodeError(OsilabError):
    """A packet's bytes do not fit the protocol that should be in them.

    ``offset`` is the byte offset *in the frame*; ``layer`` names the protocol.
    """

    def __init__(self, reason: str, *, layer: str | None = None, **where: object) -> None:
        self.layer = layer
        super().__init__(reason, **where)  # type: ignore[arg-type]

    def _message(self) -> str:
        base = super()._message()
        return f"{base} [{self.layer}]" if self.layer else base


class ConfigError(OsilabError):
    """A configuration or data file is malformed (unknown key, wrong type, bad reference): a
    balancer configuration, or a table osilab keeps as data (``layers/protocols.json``)."""


class RuleError(ConfigError):
    """An AWS listener rule breaks one of AWS's rules or limits.

    The message reads like the AWS API's ``ValidationError`` and names the rule.
    """

    def __init__(self, reason: str, *, rule: str | None = None, field: str | None = None) -> None:
        self.rule = rule
        self.field = field
        super().__init__(reason)

    def _message(self) -> str:
        where = f"rule {self.rule}" if self.rule is not None else "rule"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.reason}"


class LabError(OsilabError):
    """The recording lab cannot run here (not root, missing Debian packages, a server failed)."""


class UsageError(OsilabError):
    """A caller asked for something that does not exist (an unknown flow, request or option)."""
