"""The bundled HTTPS capture through a 2026 config: regex conditions, a url-rewrite, jwt-validation.

captures/alb/alb.pcapng (read with captures/alb/keylog.txt) is the lab's ALB scenario:
plain HTTP on :80, HTTPS (HTTP/1.1 and h2) on :443, none of it carrying a JWT. On the
HTTPS listener of the config below:

- rule 1 lets ``/api/...`` through by a path regex before any JWT check, and rewrites it
  to ``/v2/api/...`` (the target sees the rewritten request line);
- rule 2 (a host regex, ``^shop[.]example[.]com$``) and the default rule validate a JWT first: the lab's
  requests carry none, so the ALB answers 401, the outcome AWS documents
  [ALB-UG listener-verify-jwt].

tshark, reading the same bytes with the same key log, is the oracle for how many HTTPS
requests there are and how many of them have an ``/api/`` path.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from shared_paths import CAPTURES

import osilab
from osilab.balancers import ApplicationLoadBalancer, replay

CAPTURE = CAPTURES / "alb" / "alb.pcapng"
KEYLOG = CAPTURES / "alb" / "keylog.txt"
WEB = ["192.0.2.11:80", "192.0.2.12:80"]


def _config(folder: Path) -> Path:
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()
    )
    n = base64.urlsafe_b64encode(numbers.n.to_bytes(256, "big")).decode().rstrip("=")
    (folder / "jwks.json").write_text(
        json.dumps({"keys": [{"kty": "RSA", "kid": "lab", "n": n, "e": "AQAB"}]})
    )
    jwt = {"Type": "jwt-validation", "Order": 1,
           "JwtValidationConfig": {"Issuer": "https://idp.example.com", "JwksEndpoint": "jwks.json"}}  # fmt: skip

    def forward(group: str) -> dict[str, Any]:
        return {"Type": "forward", "Order": 2, "TargetGroupName": group}

    config = {
        "Type": "application",
        "TargetGroups": [{"Name": name, "Protocol": "HTTP", "Port": 80, "Targets": WEB} for name in ("tg-web", "tg-api", "tg-admin")],
        "Listeners": [
            {"Protocol": "HTTP", "Port": 80, "DefaultActions": [forward("tg-web")]},
            {"Protocol": "HTTPS", "Port": 443, "DefaultActions": [jwt, forward("tg-web")], "Rules": [
                {"Priority": "1", "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": ["^/api/"]}}],
                 "Actions": [forward("tg-api")],
                 "Transforms": [{"Type": "url-rewrite", "UrlRewriteConfig": {"Rewrites": [{"Regex": "^/api/(.*)$", "Replace": "/v2/api/$1"}]}}]},
                {"Priority": "2", "Conditions": [{"Field": "host-header", "HostHeaderConfig": {"RegexValues": ["^shop[.]example[.]com$"]}}],
                 "Actions": [jwt, forward("tg-admin")]},
            ]},
        ],
    }  # fmt: skip
    path = folder / "alb-2026.json"
    path.write_text(json.dumps(config))
    return path


def _tshark_https_paths() -> list[str]:
    """Request paths tshark decrypts on the client-alb hop's port 443 (HTTP/1.1 and h2)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed: no oracle for the HTTPS request count")
    out = subprocess.run(
        [tshark, "-r", str(CAPTURE), "-o", f"tls.keylog_file:{KEYLOG}", "-Y",
         'frame.interface_name == "client-alb" && tcp.dstport == 443 && (http.request || http2.header.name == ":path")',
         "-T", "fields", "-e", "http.request.uri", "-e", "http2.header.value", "-e", "http2.header.name",
         "-E", "separator=|", "-E", "aggregator=;"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    paths = []
    for line in out.splitlines():
        uri, values, names = (line.split("|") + ["", "", ""])[:3]
        if uri:
            paths.extend(uri.split(";"))
            continue
        names_list, values_list = names.split(";"), values.split(";")
        paths.extend(v for k, v in zip(names_list, values_list, strict=False) if k == ":path")
    return paths


def test_bundled_https_capture_through_a_2026_config(tmp_path: Path) -> None:
    alb = ApplicationLoadBalancer(str(_config(tmp_path)))
    front = (p for p in osilab.read(CAPTURE) if p.interface_name == "client-alb")
    result = replay(front, alb, keylog=str(KEYLOG))
    https = [
        d for d in result.decisions if d.request is not None and d.request.flow.server.port == 443
    ]
    api = [d for d in https if d.request.path.startswith("/api/")]
    others = [d for d in https if not d.request.path.startswith("/api/")]

    oracle = _tshark_https_paths()
    print(
        f"\nmeasured: {len(https)} HTTPS requests decided (tshark decrypts {len(oracle)}); "
        f"{len(api)} /api/ ones through the regex rule and rewritten (tshark: "
        f"{sum(p.startswith('/api/') for p in oracle)}), {len(others)} answered 401 by jwt-validation"
    )
    assert len(https) == len(oracle) and len(api) == sum(p.startswith("/api/") for p in oracle)
    assert api and others  # the scenario has both kinds
    for decision in api:  # through by a regex, before any JWT check, and rewritten
        assert (decision.rule, decision.target_group, decision.status) == ("1", "tg-api", None)
        rest = decision.request.path[len("/api/") :]
        assert decision.request_line_to_target.startswith(
            f"{decision.request.method} /v2/api/{rest}"
        )
        assert (
            "path-pattern regex '^/api/'" in decision.why
            and "url-rewrite rewrote URL" in decision.why
        )
    for decision in others:  # no JWT in the lab's requests: 401, as AWS documents
        assert (decision.action, decision.status, decision.target) == ("jwt-validation", 401, None)
        assert "no Authorization: Bearer token" in decision.why
        assert decision.rule in ("2", "default")
    assert all(d.rule == "2" for d in others)  # every HTTPS request is to shop.example.com
    plain = [
        d for d in result.decisions if d.request is not None and d.request.flow.server.port == 80
    ]
    assert plain and all(d.forwarded for d in plain)  # no JWT on HTTP: AWS allows it on HTTPS only
