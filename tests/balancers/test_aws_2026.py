"""AWS's 2025-2026 ALB rules (issue 17): RegexValues, transforms, JWT, OIDC, app_cookie, warnings.

Every table is from ``../shared/docs/lb-reference.md`` §1 and §6: its examples, and the
edge cases around them. Tokens are signed in the test with a freshly generated RSA key.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from balancers.balancer_helpers import alb_config, flow, request
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from osilab.balancers import ApplicationLoadBalancer
from osilab.balancers.config import load_config, parse_config
from osilab.balancers.config.conditions import aws_regex_problem
from osilab.balancers.transforms import replace_first
from osilab.errors import ConfigError, RuleError

NOW = 1_700_000_000.0  # the capture time of balancer_helpers.request()
ISSUER = "https://idp.example.com"


# --------------------------------------------------------------------------- keys and tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: rsa.RSAPrivateKey, kid: str = "k1") -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return {
        "keys": [
            {"kty": "RSA", "kid": kid, "alg": "RS256", "n": _b64(n), "e": _b64(b"\x01\x00\x01")}
        ]
    }


def token(
    key: rsa.RSAPrivateKey, claims: dict[str, Any], *, alg: str = "RS256", kid: str = "k1"
) -> str:
    head = _b64(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), PKCS1v15(), SHA256())
    return f"{head}.{body}.{_b64(signature)}"


def https_config(
    rules: list[dict[str, Any]] | None = None,
    default: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    config = alb_config(rules)
    listener = config["Listeners"][0]
    listener.update({"Protocol": "HTTPS", "Port": 443, **extra})
    if default is not None:
        listener["DefaultActions"] = default
    return config


def https_request(target: str = "/", **kw: Any):
    return request(target, on=flow(server_port=443), **kw)


# --------------------------------------------------------------------------- 1. RegexValues

REGEX_REFUSED = [
    # (regex, what AWS refuses in it) -- docs.amazonaws.cn rule-condition-types
    ("^(?=admin).*$", "a lookahead"),
    ("^(?!admin).*$", "a lookahead"),
    ("(?<=/api)/x", "a lookbehind"),
    ("(?<!/api)/x", "a lookbehind"),
    ("^(a)\\1$", "a backreference"),
    ("(?P<n>a)(?P=n)", "a backreference"),
    ("\\k<n>", "a backreference"),
    ("(?>ab|a)c", "an atomic group"),
    ("a*+", "a possessive quantifier"),
    ("a++b", "a possessive quantifier"),
    ("a{2,3}+", "a possessive quantifier"),
    ("(?R)", "recursion"),
    ("(a)(?1)", "a subroutine call"),
    ("\\p{L}+", "a Unicode property (\\p{..})"),
    ("[\\P{L}]", "a Unicode property (\\P{..})"),
    ("/" + "a" * 128, "more than 128 characters"),
]
REGEX_ACCEPTED = [
    "^/api/v[0-9]+/.*$",
    "a+?",
    "[+*]+",
    "a{2,3}?",
    "^(?:shop|www)[.]example[.]com:8443$",
    "(?i)ABC",
    "\\d{3}",
]


@pytest.mark.parametrize(("regex", "what"), REGEX_REFUSED)
def test_regex_values_refuse_what_aws_refuses(regex: str, what: str) -> None:
    assert aws_regex_problem(regex) == what
    rule = {"Priority": "1", "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"RegexValues": [regex]}}],
            "Actions": [{"Type": "forward", "TargetGroupName": "api"}]}  # fmt: skip
    with pytest.raises(RuleError, match="RegexValues") as error:
        parse_config(alb_config([rule]))
    assert what in str(error.value) and "rule 1, path-pattern" in str(error.value)


@pytest.mark.parametrize("regex", REGEX_ACCEPTED)
def test_regex_values_accept_the_rest(regex: str) -> None:
    assert aws_regex_problem(regex) is None


def _rule(condition: dict[str, Any], group: str = "api") -> dict[str, Any]:
    return {
        "Priority": "1",
        "Conditions": [condition],
        "Actions": [{"Type": "forward", "TargetGroupName": group}],
    }


def path_regex(*values: str) -> dict[str, Any]:
    return {"Field": "path-pattern", "PathPatternConfig": {"RegexValues": list(values)}}


def host_regex(*values: str) -> dict[str, Any]:
    return {"Field": "host-header", "HostHeaderConfig": {"RegexValues": list(values)}}


def header_regex(name: str, *values: str) -> dict[str, Any]:
    return {
        "Field": "http-header",
        "HttpHeaderConfig": {"HttpHeaderName": name, "RegexValues": list(values)},
    }


REGEX_MATCHES = [
    # (name, condition, request keyword arguments, matches?)
    ("lb-reference example", path_regex("^/api/v[0-9]+/.*$"), {"target": "/api/v2/items"}, True),
    ("example needs a version", path_regex("^/api/v[0-9]+/.*$"), {"target": "/api/items"}, False),
    ("unanchored is a search", path_regex("v[0-9]+"), {"target": "/api/v2/items"}, True),
    ("path regex is case-sensitive", path_regex("^/API/"), {"target": "/api/x"}, False),
    ("path regex never sees the query", path_regex("id=3"), {"target": "/api?id=3"}, False),
    ("host regex ignores case", host_regex("^shop[.]example[.]com$"), {"host": "SHOP.Example.com"}, True),
    ("a host with a port matches by regex", host_regex("^shop[.]example[.]com:8443$"), {"host": "shop.example.com:8443"}, True),
    ("anchored host regex refuses a port", host_regex("^shop[.]example[.]com$"), {"host": "shop.example.com:8443"}, False),
    ("header regex ignores case", header_regex("User-Agent", "chrome/1[0-9]{2}"), {"headers": (("User-Agent", "x Chrome/120"),)}, True),
    ("header regex, header absent", header_regex("X-Env", ".*"), {}, False),
    ("OR within RegexValues", path_regex("^/a$", "^/b$"), {"target": "/b"}, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "condition", "kw", "matches"), REGEX_MATCHES, ids=[c[0] for c in REGEX_MATCHES]
)
def test_regex_conditions_match_with_python_re(
    name: str, condition: dict[str, Any], kw: dict[str, Any], matches: bool
) -> None:
    alb = ApplicationLoadBalancer(alb_config([_rule(condition)]))
    decision = alb.request(request(**kw))
    assert (decision.rule == "1") is matches, decision.why
    if matches:
        assert "regex" in decision.why


def test_a_host_with_a_port_only_matches_by_regex() -> None:
    wildcard = {"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com*"]}}
    decision = ApplicationLoadBalancer(alb_config([_rule(wildcard)])).request(
        request(host="shop.example.com:8443")
    )
    assert decision.rule == "default"
    assert "carries a port" in decision.why


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"Values": ["/a"], "RegexValues": ["^/a$"]}, "Values or RegexValues, not both"),
        ({"RegexValues": []}, "at least one value"),
        ({"RegexValues": ["("]}, "not a valid regular expression"),
    ],
)
def test_regex_values_shape(config: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_config(alb_config([_rule({"Field": "path-pattern", "PathPatternConfig": config})]))


def test_regex_values_only_on_three_fields() -> None:
    condition = {"Field": "http-request-method", "HttpRequestMethodConfig": {"RegexValues": ["^G"]}}
    with pytest.raises(RuleError, match="only allowed for host-header, http-header, path-pattern"):
        parse_config(alb_config([_rule(condition)]))


# --------------------------------------------------------------------------- 2. transforms

HOST_REWRITE = {"Type": "host-header-rewrite", "HostHeaderRewriteConfig": {"Rewrites": [{"Regex": "^mywebsite-(.+).com$", "Replace": "internal.dev.$1.myweb.com"}]}}  # fmt: skip
URL_REWRITE = {"Type": "url-rewrite", "UrlRewriteConfig": {"Rewrites": [{"Regex": "^/dp/([A-Za-z0-9]+)/?$", "Replace": "/product.php?id=$1"}]}}  # fmt: skip


def _transforming(
    *transforms: dict[str, Any], condition: dict[str, Any] | None = None
) -> ApplicationLoadBalancer:
    rule = _rule(condition or path_regex("."))
    rule["Transforms"] = list(transforms)
    return ApplicationLoadBalancer(alb_config([rule]))


TRANSFORMS = [
    # (name, transforms, host, target, Host to target, request line to target or None)
    ("lb-reference host example", [HOST_REWRITE], "mywebsite-example.com", "/project-a", "internal.dev.example.myweb.com", "GET /project-a HTTP/1.1"),
    ("lb-reference url example", [URL_REWRITE], "shop.example.com", "/dp/B0042/", "shop.example.com", "GET /product.php?id=B0042 HTTP/1.1"),
    ("both at once", [HOST_REWRITE, URL_REWRITE], "mywebsite-x.com", "/dp/A1", "internal.dev.x.myweb.com", "GET /product.php?id=A1 HTTP/1.1"),
    ("no match: sent unchanged", [URL_REWRITE], "shop.example.com", "/cart", "shop.example.com", None),
    ("url regex sees the query too", [URL_REWRITE], "shop.example.com", "/dp/B1?ref=x", "shop.example.com", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "transforms", "host", "target", "host_out", "line"),
    TRANSFORMS,
    ids=[t[0] for t in TRANSFORMS],
)
def test_transforms_rewrite_after_the_rule_won(
    name: str,
    transforms: list[dict[str, Any]],
    host: str,
    target: str,
    host_out: str,
    line: str | None,
) -> None:
    decision = _transforming(*transforms).request(request(target, host=host))
    assert decision.rule == "1" and decision.target_group == "api"  # the route is the rule's
    assert dict(decision.headers_to_target)["Host"] == host_out
    assert decision.request_line_to_target == line
    assert decision.request.target == target  # what the client sent is kept
    if line or host_out != host:
        assert "rewrote" in decision.why
    else:
        assert "sent unchanged" in decision.why


def test_transforms_never_change_which_rule_wins() -> None:
    # The rewrite would make the path match rule 1, but rules are evaluated first.
    rule2 = _rule(path_regex("^/cart$"), "api")
    rule2["Priority"], rule2["Transforms"] = (
        "2",
        [
            {
                "Type": "url-rewrite",
                "UrlRewriteConfig": {"Rewrites": [{"Regex": "^/cart$", "Replace": "/dp/x"}]},
            }
        ],
    )
    rule1 = _rule(path_regex("^/dp/"), "web")
    decision = ApplicationLoadBalancer(alb_config([rule1, rule2])).request(request("/cart"))
    assert decision.rule == "2" and decision.request_line_to_target == "GET /dp/x HTTP/1.1"


@pytest.mark.parametrize(
    ("replace", "target"),
    [("no-slash/$1", "/dp/A1"), ("/a b$1", "/dp/A1")],
)
def test_a_rewrite_to_an_invalid_url_answers_500(replace: str, target: str) -> None:
    bad = {
        "Type": "url-rewrite",
        "UrlRewriteConfig": {"Rewrites": [{"Regex": "^/dp/(.*)$", "Replace": replace}]},
    }
    decision = _transforming(bad).request(request(target))
    assert (decision.action, decision.status, decision.target) == ("transform-failed", 500, None)
    assert "not a valid URL" in decision.why


def test_a_rewrite_to_an_invalid_host_answers_500() -> None:
    bad = {
        "Type": "host-header-rewrite",
        "HostHeaderRewriteConfig": {"Rewrites": [{"Regex": "^(.*)$", "Replace": "bad host/$1"}]},
    }
    decision = _transforming(bad).request(request("/"))
    assert (decision.action, decision.status) == ("transform-failed", 500)


@pytest.mark.parametrize(
    ("transforms", "message"),
    [
        ([URL_REWRITE, URL_REWRITE], "at most one url-rewrite"),
        ([HOST_REWRITE, HOST_REWRITE], "at most one host-header-rewrite"),
        (
            [
                {
                    "Type": "url-rewrite",
                    "UrlRewriteConfig": {"Rewrites": [{"Regex": "(?=x)", "Replace": "/"}]},
                }
            ],
            "a lookahead",
        ),
        (
            [
                {
                    "Type": "url-rewrite",
                    "UrlRewriteConfig": {"Rewrites": [{"Regex": "^/(a)$", "Replace": "/$2"}]},
                }
            ],
            "uses \\$2",
        ),
        ([{"Type": "path-rewrite"}], "Type is one of"),
    ],
)
def test_transform_limits(transforms: list[dict[str, Any]], message: str) -> None:
    rule = _rule(path_regex("."))
    rule["Transforms"] = transforms
    with pytest.raises(RuleError, match=message):
        parse_config(alb_config([rule]))


def test_no_transform_on_the_default_rule() -> None:
    rules = [
        {
            "Priority": "default",
            "IsDefault": True,
            "Conditions": [],
            "Actions": [{"Type": "forward", "TargetGroupName": "web"}],
            "Transforms": [URL_REWRITE],
        }
    ]
    config = alb_config(rules)
    del config["Listeners"][0]["DefaultActions"]
    with pytest.raises(RuleError, match="default rule cannot have transforms"):
        parse_config(config)


def test_replace_first_groups() -> None:
    assert replace_first("([a-z]+)-([0-9]+)", "$2-$1", "/x/abc-12/y") == "/x/12-abc/y"


# --------------------------------------------------------------------------- 3. jwt-validation


def _jwt_config(
    tmp_path: Path,
    key: rsa.RSAPrivateKey,
    endpoint: str = "jwks.json",
    claims: list[dict[str, Any]] | None = None,
) -> Path:
    (tmp_path / "jwks.json").write_text(json.dumps(jwks(key)))
    jwt: dict[str, Any] = {"Issuer": ISSUER, "JwksEndpoint": endpoint}
    if claims:
        jwt["AdditionalClaims"] = claims
    actions = [{"Type": "jwt-validation", "Order": 1, "JwtValidationConfig": jwt},
               {"Type": "forward", "Order": 2, "TargetGroupName": "web"}]  # fmt: skip
    path = tmp_path / "alb.json"
    path.write_text(json.dumps(https_config(default=actions)))
    return path


GOOD = {"iss": ISSUER, "exp": NOW + 300, "iat": NOW - 10, "nbf": NOW - 10, "scope": "read write"}
JWT_CASES = [
    # (name, claims changes, header changes, expected status (None: forwarded), reason fragment)
    ("valid", {}, {}, None, "is valid"),
    ("expired", {"exp": NOW - 1}, {}, 401, "expired"),
    ("exp exactly now is expired", {"exp": NOW}, {}, 401, "expired"),
    ("no exp", {"exp": None}, {}, 401, "no exp claim"),
    ("wrong issuer", {"iss": "https://evil.example"}, {}, 401, "is not the issuer"),
    ("not yet valid", {"nbf": NOW + 60}, {}, 401, "not valid before"),
    ("issued in the future", {"iat": NOW + 60}, {}, 401, "issued"),
    ("no nbf, no iat is fine", {"nbf": None, "iat": None}, {}, None, "is valid"),
    ("HS256 refused", {}, {"alg": "HS256"}, 401, "RS256 only"),
    ("unknown kid", {}, {"kid": "other"}, 401, "no key with kid"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "changes", "header", "status", "reason"), JWT_CASES, ids=[c[0] for c in JWT_CASES]
)
def test_jwt_validation(
    tmp_path: Path,
    key: rsa.RSAPrivateKey,
    name: str,
    changes: dict[str, Any],
    header: dict[str, Any],
    status: int | None,
    reason: str,
) -> None:
    alb = ApplicationLoadBalancer(str(_jwt_config(tmp_path, key)))
    claims = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    jwt = token(key, claims, **header)
    decision = alb.request(https_request(headers=(("Authorization", f"Bearer {jwt}"),)))
    assert decision.status == status, decision.why
    assert reason in decision.why
    if status is None:
        assert (
            decision.forwarded and ("Authorization", f"Bearer {jwt}") in decision.headers_to_target
        )
    else:
        assert decision.action == "jwt-validation" and decision.target is None


def test_jwt_missing_and_tampered(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    alb = ApplicationLoadBalancer(str(_jwt_config(tmp_path, key)))
    assert "no Authorization: Bearer" in alb.request(https_request()).why
    good = token(key, GOOD)
    head, body, sig = good.split(".")
    forged = _b64(json.dumps({**GOOD, "iss": ISSUER, "admin": True}).encode())
    decision = alb.request(
        https_request(headers=(("Authorization", f"Bearer {head}.{forged}.{sig}"),))
    )
    assert decision.status == 401 and "signature does not verify" in decision.why
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    decision = alb.request(
        https_request(headers=(("Authorization", f"Bearer {token(other, GOOD)}"),))
    )
    assert decision.status == 401 and "signature does not verify" in decision.why


@pytest.mark.parametrize(
    ("claim", "value", "ok"),
    [
        ({"Format": "single-string", "Name": "aud", "Values": ["api"]}, "api", True),
        ({"Format": "single-string", "Name": "aud", "Values": ["api"]}, "web", False),
        ({"Format": "string-array", "Name": "groups", "Values": ["ops"]}, ["dev", "ops"], True),
        (
            {"Format": "space-separated-values", "Name": "scope", "Values": ["write"]},
            "read write",
            True,
        ),
        (
            {"Format": "space-separated-values", "Name": "scope", "Values": ["admin"]},
            "read write",
            False,
        ),
    ],
)
def test_jwt_additional_claims(
    tmp_path: Path, key: rsa.RSAPrivateKey, claim: dict[str, Any], value: Any, ok: bool
) -> None:
    alb = ApplicationLoadBalancer(str(_jwt_config(tmp_path, key, claims=[claim])))
    jwt = token(key, {**GOOD, claim["Name"]: value})
    decision = alb.request(https_request(headers=(("Authorization", f"Bearer {jwt}"),)))
    assert decision.forwarded is ok, decision.why


def test_jwks_endpoint_forms(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    assert load_config(_jwt_config(tmp_path, key, endpoint=(tmp_path / "jwks.json").as_uri()))
    with pytest.raises(ConfigError, match="osilab reads no network"):
        load_config(
            _jwt_config(tmp_path, key, endpoint="https://idp.example.com/.well-known/jwks.json")
        )
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(_jwt_config(tmp_path, key, endpoint="missing.json"))


def test_jwt_and_authenticate_are_https_only(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    config = json.loads(_jwt_config(tmp_path, key).read_text())
    config["Listeners"][0].update({"Protocol": "HTTP", "Port": 80})
    with pytest.raises(RuleError, match="HTTPS listeners only"):
        parse_config(config, base=tmp_path)


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (
            [
                {"Type": "forward", "Order": 1, "TargetGroupName": "web"},
                {
                    "Type": "fixed-response",
                    "Order": 2,
                    "FixedResponseConfig": {"StatusCode": "200"},
                },
            ],
            "exactly one of forward",
        ),
        (
            [
                {"Type": "forward", "Order": 1, "TargetGroupName": "web"},
                {
                    "Type": "authenticate-oidc",
                    "Order": 2,
                    "AuthenticateOidcConfig": {
                        "AuthorizationEndpoint": "https://idp/a",
                        "ClientId": "c",
                    },
                },
            ],
            "must be last",
        ),
        (
            [
                {
                    "Type": "authenticate-oidc",
                    "AuthenticateOidcConfig": {
                        "AuthorizationEndpoint": "https://idp/a",
                        "ClientId": "c",
                    },
                },
                {"Type": "forward", "TargetGroupName": "web"},
            ],
            "same Order",
        ),
    ],
)
def test_actions_run_in_order_with_one_terminal_last(
    actions: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(RuleError, match=message):
        parse_config(https_config(default=actions))


# --------------------------------------------------------------------------- authenticate-oidc / cognito

OIDC = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {
    "Issuer": ISSUER, "AuthorizationEndpoint": "https://idp.example.com/authorize", "TokenEndpoint": "https://idp.example.com/token",
    "UserInfoEndpoint": "https://idp.example.com/userinfo", "ClientId": "abc", "ClientSecret": "s3cret"}}  # fmt: skip
COGNITO = {"Type": "authenticate-cognito", "Order": 1, "AuthenticateCognitoConfig": {
    "UserPoolArn": "arn:aws:cognito-idp:us-west-2:123456789012:userpool/us-west-2_abc", "UserPoolClientId": "client1", "UserPoolDomain": "myapp"}}  # fmt: skip
FORWARD_LAST = {"Type": "forward", "Order": 2, "TargetGroupName": "web"}


@pytest.mark.parametrize(
    ("auth", "cookie", "status", "location_start"),
    [
        (
            OIDC,
            None,
            302,
            "https://idp.example.com/authorize?client_id=abc&redirect_uri=https%3A%2F%2Fshop.example%2Foauth2%2Fidpresponse",
        ),
        (OIDC, "AWSELBAuthSessionCookie=opaque", None, None),
        (OIDC, "AWSELBAuthSessionCookie-0=opaque; AWSELBAuthSessionCookie-1=more", None, None),
        (
            COGNITO,
            None,
            302,
            "https://myapp.auth.us-west-2.amazoncognito.com/oauth2/authorize?client_id=client1",
        ),
        (COGNITO, "AWSELBAuthSessionCookie=x", None, None),
    ],
)
def test_authenticate_actions(
    auth: dict[str, Any], cookie: str | None, status: int | None, location_start: str | None
) -> None:
    alb = ApplicationLoadBalancer(https_config(default=[auth, FORWARD_LAST]))
    headers = (("Cookie", cookie),) if cookie else ()
    decision = alb.request(https_request(headers=headers))
    assert decision.status == status, decision.why
    assert "never talks to an identity provider" in decision.why
    if status:
        assert decision.location.startswith(location_start) and decision.action == auth["Type"]
    else:
        assert decision.forwarded


@pytest.mark.parametrize(("mode", "status"), [("deny", 401), ("allow", None)])
def test_on_unauthenticated_request(mode: str, status: int | None) -> None:
    auth = json.loads(json.dumps(OIDC))
    auth["AuthenticateOidcConfig"]["OnUnauthenticatedRequest"] = mode
    decision = ApplicationLoadBalancer(https_config(default=[auth, FORWARD_LAST])).request(
        https_request()
    )
    assert decision.status == status


def test_oidc_fields_the_model_does_not_use_are_named_once() -> None:
    config = parse_config(
        https_config(
            default=[OIDC, FORWARD_LAST],
            rules=[{**_rule(path_regex(".")), "Actions": [OIDC, FORWARD_LAST]}],
        )
    )
    named = [line for line in config.warnings if "AuthenticateOidcConfig" in line]
    assert (
        sorted(named) == sorted(set(named)) and len(named) == 4
    )  # Issuer, Token/UserInfoEndpoint, ClientSecret
    assert all(line.startswith("accepted, not modelled: AuthenticateOidcConfig.") for line in named)


# --------------------------------------------------------------------------- app_cookie, header modification


def _app_cookie_alb() -> ApplicationLoadBalancer:
    groups = [{"Name": "web", "Targets": ["192.0.2.11:80", "192.0.2.12:80"], "Attributes": {
        "stickiness.enabled": "true", "stickiness.type": "app_cookie", "stickiness.app_cookie.cookie_name": "SESSION"}},
        {"Name": "api", "Targets": ["192.0.2.13:80"]}]  # fmt: skip
    return ApplicationLoadBalancer(alb_config(groups=groups))


def test_app_cookie_stickiness() -> None:
    from osilab.balancers.alb import encode_cookie

    alb = _app_cookie_alb()
    first = alb.request(request("/"))
    assert "AWSALBAPP-0" in first.why and "SESSION" in first.why and "http.cookie" in first.seen
    sticky = encode_cookie("web", "192.0.2.12:80", alb.seed)
    for index in range(3):
        decision = alb.request(
            request(
                "/", index=index + 1, headers=(("Cookie", f"SESSION=abc; AWSALBAPP-0={sticky}"),)
            )
        )
        assert (
            decision.target == "192.0.2.12:80" and "AWSALBAPP-0 stickiness cookie" in decision.why
        )


@pytest.mark.parametrize(
    ("name", "message"),
    [("AWSALBAPP-x", "reserved"), ("", "needs stickiness.app_cookie.cookie_name")],
)
def test_app_cookie_names(name: str, message: str) -> None:
    groups = [
        {
            "Name": "web",
            "Targets": ["192.0.2.11:80"],
            "Attributes": {
                "stickiness.enabled": "true",
                "stickiness.type": "app_cookie",
                "stickiness.app_cookie.cookie_name": name,
            },
        }
    ]
    with pytest.raises(ConfigError, match=message):
        parse_config(alb_config(groups=groups))


def test_header_modification_on_the_albs_own_responses() -> None:
    config = alb_config([{"Priority": "1", "Conditions": [path_regex("^/old$")], "Actions": [
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]}])  # fmt: skip
    config["Listeners"][0]["Attributes"] = {
        "routing.http.response.strict_transport_security.header_value": "max-age=31536000",
        "routing.http.response.server.enabled": "false",
    }
    decision = ApplicationLoadBalancer(config).request(request("/old"))
    assert "Strict-Transport-Security: max-age=31536000" in decision.why
    assert "no Server header" in decision.why and decision.status == 404


# --------------------------------------------------------------------------- 5. nothing silent

WARNED = [
    # (where in the document, key, value, the warning's field)
    ("listener", "Certificates", [{"CertificateArn": "arn:aws:acm:x"}], "Listener.Certificates"),
    ("listener", "SslPolicy", "ELBSecurityPolicy-2016-08", "Listener.SslPolicy"),
    ("group", "HealthCheckPath", "/health", "TargetGroup.HealthCheckPath"),
    ("group", "IpAddressType", "ipv4", "TargetGroup.IpAddressType"),  # TargetType: modelled (issue 18)
    ("lb", "Scheme", "internet-facing", "LoadBalancer.Scheme"),
    ("lb-attribute", "routing.http2.enabled", "true", "Attributes.routing.http2.enabled"),
    ("lb-attribute", "no.such.attribute", "1", "Attributes.no.such.attribute"),
    ("group-attribute", "lambda.multi_value_headers.enabled", "true",
     "Attributes.lambda.multi_value_headers.enabled"),  # slow start: modelled (issue 18)
]  # fmt: skip


@pytest.mark.parametrize(("where", "key", "value", "field"), WARNED, ids=[w[3] for w in WARNED])
def test_every_unmodelled_field_is_named_once(where: str, key: str, value: Any, field: str) -> None:
    config = alb_config()
    target = {
        "listener": config["Listeners"][0],
        "group": config["TargetGroups"][0],
        "lb": config,
    }.get(where)
    if target is not None:
        target[key] = value
    else:
        holder = config if where == "lb-attribute" else config["TargetGroups"][0]
        holder["Attributes"] = {key: value}
    config["TargetGroups"][1].update({key: value} if where == "group" else {})
    warnings = parse_config(config).warnings
    lines = [line for line in warnings if line.startswith(f"accepted, not modelled: {field} (")]
    assert len(lines) == 1, warnings


def test_modelled_fields_give_no_warning() -> None:
    config = alb_config()
    config["Attributes"] = {
        "routing.http.desync_mitigation_mode": "strictest",
        "routing.http.xff_header_processing.mode": "append",
    }
    config["TargetGroupArn"] = None
    del config["TargetGroupArn"]
    assert parse_config(config).warnings == ()
