"""Rule transforms: the ALB rewrites the Host or the URL *after* a rule has won.

Theory of operation
-------------------
Since 2025 a listener rule may carry up to one ``host-header-rewrite`` and one
``url-rewrite`` transform [ALB-UG rule-transforms; ``lb-reference.md`` §1.4]. Each is a
regular expression and a replacement: "the transform uses a regular expression to match
a pattern in the host header [the request URL] and then replaces it with a replacement
string". The rules the model keeps:

1. transforms run after the rules are evaluated, so they **never change which rule
   wins**; the default rule cannot have any;
2. the regex is searched in the value (the Host as sent; the request target, path and
   query); the *first* match is replaced, ``$1``, ``$2``... standing for its groups;
3. no match: the request goes to the target unchanged;
4. a match whose result is not a valid host (letters, digits, ``-``, ``.``, an optional
   ``:port``) or a valid URL (starting with ``/``, visible ASCII only) fails, and the ALB
   answers **500** itself.

:func:`apply_transforms` returns a :class:`Rewrite`, which says what was rewritten (for
the decision's why) and builds the request as the target receives it
(:meth:`Rewrite.request`). This module knows only rules and requests: no packets, no
targets.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from osilab.balancers.config import Rule
from osilab.balancers.config.model import Transform
from osilab.protocols.messages import HttpRequest

__all__ = ["Rewrite", "apply_transforms", "replace_first"]

_GROUP = re.compile(r"\$(\d+)")
_VALID_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
_VALID_URL = re.compile(r"^/[\x21-\x7e]*$")


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What a rule's transforms did to one request.

    Attributes:
        host: the new Host, or ``None`` when unchanged.
        target: the new request target (path and query), or ``None`` when unchanged.
        failed: why a transform failed (the ALB answers 500), or ``None``.
        notes: one phrase per transform, for the decision's why.
    """

    host: str | None = None
    target: str | None = None
    failed: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.host is not None or self.target is not None

    @property
    def why(self) -> str:
        """``"; url-rewrite ..."`` for the decision's why, or ``""``."""
        return "".join(f"; {note}" for note in self.notes)

    def request(self, request: HttpRequest) -> HttpRequest:
        """``request`` as the target receives it: new target, new Host header."""
        if not self.changed:
            return request
        headers = request.headers
        if self.host is not None:
            headers = tuple(
                (name, self.host) if name.lower() in ("host", ":authority") else (name, value)
                for name, value in headers
            )
        return dataclasses.replace(request, target=self.target or request.target, headers=headers)


def replace_first(pattern: str, replace: str, value: str) -> str | None:
    """``value`` with the first match of ``pattern`` replaced (``$1``.. its groups), or
    ``None`` when the pattern does not match.

    >>> replace_first("^mywebsite-(.+).com$", "internal.dev.$1.myweb.com", "mywebsite-example.com")
    'internal.dev.example.myweb.com'
    >>> replace_first("^/dp/([A-Za-z0-9]+)/?$", "/product.php?id=$1", "/dp/B0042/")
    '/product.php?id=B0042'
    >>> replace_first("^/dp/", "/x/", "/shop") is None
    True
    """
    match = re.search(pattern, value)
    if match is None:
        return None
    filled = _GROUP.sub(lambda group: match.group(int(group.group(1))) or "", replace)
    return value[: match.start()] + filled + value[match.end() :]


def _one(
    transform: Transform, value: str, valid: re.Pattern[str], what: str
) -> tuple[str | None, str | None, str]:
    """(new value or None, failure or None, the phrase for the why) of one transform."""
    result = replace_first(transform.regex, transform.replace, value)
    if result is None:
        return (
            None,
            None,
            (
                f"{transform.type} regex {transform.regex!r} does not match {what} {value!r}, "
                "so it is sent unchanged"
            ),
        )
    if not valid.match(result):
        return (
            None,
            f"{transform.type} turned {what} {value!r} into {result!r}, not a valid {what}",
            "",
        )
    return result, None, f"{transform.type} rewrote {what} {value!r} to {result!r}"


def apply_transforms(rule: Rule | None, request: HttpRequest) -> Rewrite:
    """The rule's transforms on ``request`` (nothing for the default rule, ``None``)."""
    if rule is None or not rule.transforms:
        return Rewrite()
    host, target, notes = None, None, []
    host_rewrite = rule.transform("host-header-rewrite")
    if host_rewrite is not None and request.host is not None:
        host, failed, note = _one(host_rewrite, request.host, _VALID_HOST, "host")
        if failed:
            return Rewrite(failed=failed)
        notes.append(note)
    url_rewrite = rule.transform("url-rewrite")
    if url_rewrite is not None:
        target, failed, note = _one(url_rewrite, request.target, _VALID_URL, "URL")
        if failed:
            return Rewrite(failed=failed)
        notes.append(note)
    return Rewrite(host, target, None, tuple(notes))
