"""The ``cdn`` scenario: an edge cache standing in for CloudFront, in front of the ALB role.

The picture (``lb-reference.md`` §6, the seed architecture's "CloudFront may be used
for distributing or caching static content")::

    client --client-edge--> edge (nginx proxy_cache) --edge-s3--> s3 (nginx: /static/*)
                                                   \\--edge-alb--> alb (HAProxy) -> web -> api

* **The edge** is nginx with ``proxy_cache`` and ``proxy_cache_revalidate``: it ends the
  viewer's TLS, picks a *behavior* by path (``location`` blocks in the distribution's
  order), builds the cache key the behavior's cache policy names, and answers
  ``X-Cache: Hit|Miss|RefreshHit from cloudfront`` mapped from nginx's
  ``$upstream_cache_status`` (HIT, MISS/EXPIRED, REVALIDATED); a plain-HTTP request gets
  ``Redirect from cloudfront`` (301, ``redirect-to-https``) or ``Error from cloudfront``
  (403, ``https-only``). It adds ``Via`` and ``X-Forwarded-For`` and speaks plain HTTP
  to both origins (origin protocol policy ``http-only``).
* **The static origin** (nginx standing in for S3) serves ``/static/*`` with
  ``Cache-Control`` per file, ``ETag`` and ``Last-Modified``, so an expired object is
  revalidated with ``If-None-Match`` and answered 304.
* **The ALB origin** is the lab's ALB role, for ``/api/*`` and the default behavior,
  never cached (AWS's managed CachingDisabled policy with AllViewer forwarding).

Where nginx and CloudFront differ, the lab is set up so the difference does not arise
(``captures/README.md``, "cdn"): nginx does not clamp ``max-age`` to ``MinTTL``/``MaxTTL``
(every ``max-age`` here is inside them), nginx does not cache a response carrying
``Set-Cookie`` while CloudFront does (no origin response here sets a cookie), nginx's
``proxy_cache_valid`` stands in for ``DefaultTTL`` (used only without ``Cache-Control``),
and the request id travels in ``X-Request-Id``, never the query, so it does not split
the cache.

Everything here is data and text: :mod:`osilab.lab.record` writes and runs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from osilab.lab.truth import parse_fields

__all__ = [
    "EDGE_ID",
    "STATIC_ORIGIN",
    "ALB_ORIGIN",
    "STATIC_FILES",
    "VIEWER_REQUESTS",
    "PAUSE",
    "distribution_config",
    "nginx_edge",
    "nginx_static_origin",
    "parse_edge",
    "parse_origin",
    "cdn_truth",
]

#: The edge's name in ``Via: 1.1 <id>.cloudfront.net (CloudFront)``.
EDGE_ID = "osilab-lab"
#: Origin ids, as ``Origins.Items[].Id`` names them.
STATIC_ORIGIN, ALB_ORIGIN = "static-s3", "alb"
_STATIC_DOMAIN = "static.origin.example"
_ALB_DOMAIN = "alb.origin.example"

#: AWS's managed policies the ALB behaviors use (CachingDisabled, AllViewer).
_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
_ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
_STATIC_POLICY = "osilab-static"
_REQUEST_ID_POLICY = "osilab-request-id"

#: The static policy's TTLs: nginx's ``proxy_cache_valid`` is the DefaultTTL.
_MIN_TTL, _DEFAULT_TTL, _MAX_TTL = 0, 60, 31536000

#: Files of the static origin: path -> (body, Cache-Control or None for DefaultTTL).
STATIC_FILES: dict[str, tuple[str, str | None]] = {
    "/static/app.js": ("\n".join(f"// line {i}: osilab lab static file, kept at the edge"
                                 for i in range(400)) + "\n", "public, max-age=300"),
    "/static/style.css": ("body { font-family: sans-serif; }\n" * 40, "public, max-age=300"),
    "/static/news.json": ('{"news": "this object expires after 2 seconds"}\n', "max-age=2"),
    "/static/robots.txt": ("User-agent: *\nDisallow: /api/\n", None),
}  # fmt: skip

#: Seconds the client waits so that ``/static/news.json`` (max-age=2) goes stale.
PAUSE = 3.0

#: The viewer's requests: (connection, method, path, extra headers, X-Cache expected, why).
#: ``connection`` ``https-N``/``http-N`` names one keep-alive connection; ``pause`` waits.
VIEWER_REQUESTS: tuple[tuple[str, str, str, tuple[tuple[str, str], ...], str, str], ...] = (
    ("https-1", "GET", "/static/app.js", (), "Miss", "first request: the edge has no copy"),
    ("https-1", "GET", "/static/app.js", (), "Hit", "the same key again"),
    ("https-1", "GET", "/static/app.js?v=2", (), "Miss", "v is in the cache key"),
    ("https-1", "GET", "/static/app.js?v=2", (), "Hit", "v=2 again"),
    ("https-1", "GET", "/static/app.js?utm_source=mail", (), "Hit", "utm_source is not in the key"),
    ("https-1", "GET", "/static/style.css", (("Cookie", "lang=fr"),), "Miss", "lang is in the key"),
    ("https-1", "GET", "/static/style.css", (("Cookie", "lang=fr; session=abc123"),), "Hit",
     "session is not in the key"),
    ("https-1", "GET", "/static/style.css", (("Cookie", "lang=de"),), "Miss", "another lang"),
    ("https-1", "GET", "/static/robots.txt", (), "Miss", "no Cache-Control: DefaultTTL"),
    ("https-1", "GET", "/static/news.json", (), "Miss", "max-age=2"),
    ("https-1", "GET", "/static/news.json", (), "Hit", "still fresh"),
    ("https-1", "GET", "/api/items/1", (), "Miss", "/api/*: never cached, to the ALB"),
    ("https-1", "GET", "/api/items/1", (), "Miss", "again: still to the ALB"),
    ("https-1", "GET", "/", (), "Miss", "the default behavior: to the ALB"),
    ("pause", "", "", (), "", "news.json goes stale"),
    ("https-2", "GET", "/static/news.json", (), "RefreshHit", "stale: revalidated, 304"),
    ("https-2", "GET", "/static/news.json", (), "Hit", "fresh again after the 304"),
    ("https-2", "GET", "/static/robots.txt", (), "Hit", "DefaultTTL 60 s"),
    ("https-2", "GET", "/static/app.js", (), "Hit", "max-age=300"),
    ("https-2", "POST", "/api/orders", (("Content-Type", "application/json"),), "Miss",
     "a POST goes to the origin"),
    ("https-2", "GET", "/api/items/2", (("X-Canary", "1"),), "Miss",
     "the ALB's rules still apply behind the edge"),
    ("http-1", "GET", "/static/app.js", (), "Redirect", "plain HTTP: redirect-to-https"),
    ("http-2", "GET", "/private/report", (), "Error", "plain HTTP: https-only"),
)  # fmt: skip

_ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]


def _items(items: list[Any]) -> dict[str, Any]:
    return {"Quantity": len(items), "Items": items}


def _alb_behavior(pattern: str | None, viewer: str) -> dict[str, Any]:
    behavior: dict[str, Any] = {} if pattern is None else {"PathPattern": pattern}
    behavior.update({
        "TargetOriginId": ALB_ORIGIN,
        "ViewerProtocolPolicy": viewer,
        "AllowedMethods": {**_items(_ALL_METHODS), "CachedMethods": _items(["GET", "HEAD"])},
        "Compress": False,
        "CachePolicyId": _CACHING_DISABLED,
        "OriginRequestPolicyId": _ALL_VIEWER,
    })  # fmt: skip
    return behavior


def distribution_config(static: str, alb: str) -> dict[str, Any]:
    """The edge as ``aws cloudfront get-distribution-config`` prints it, with the policies.

    ``static`` and ``alb`` are the origins' IP addresses (``OriginAddresses``: the lab's
    DNS). :func:`nginx_edge` implements the same behaviors, in the same order.
    """
    origin = {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only",
              "OriginReadTimeout": 30, "OriginKeepaliveTimeout": 5}  # fmt: skip
    return {
        "ETag": "E2OSILABLAB",
        "DistributionConfig": {
            "CallerReference": "osilab-lab-cdn",
            "Aliases": _items(["shop.example.com"]),
            "Comment": "osilab lab: the edge in front of the ALB role (nginx proxy_cache)",
            "Enabled": True,
            "Origins": _items([
                {"Id": STATIC_ORIGIN, "DomainName": _STATIC_DOMAIN, "OriginPath": "",
                 "CustomHeaders": _items([]), "CustomOriginConfig": origin},
                {"Id": ALB_ORIGIN, "DomainName": _ALB_DOMAIN, "OriginPath": "",
                 "CustomHeaders": _items([]), "CustomOriginConfig": origin},
            ]),
            "DefaultCacheBehavior": _alb_behavior(None, "redirect-to-https"),
            "CacheBehaviors": _items([
                {"PathPattern": "/static/*", "TargetOriginId": STATIC_ORIGIN,
                 "ViewerProtocolPolicy": "redirect-to-https",
                 "AllowedMethods": {**_items(["GET", "HEAD"]),
                                    "CachedMethods": _items(["GET", "HEAD"])},
                 "Compress": False, "CachePolicyId": _STATIC_POLICY,
                 "OriginRequestPolicyId": _REQUEST_ID_POLICY},
                _alb_behavior("/api/*", "redirect-to-https"),
                _alb_behavior("/private/*", "https-only"),
            ]),
            "PriceClass": "PriceClass_100",
            "HttpVersion": "http1.1",
        },
        "CachePolicies": [{"CachePolicy": {"Id": _STATIC_POLICY, "CachePolicyConfig": {
            "Name": "osilab-static", "MinTTL": _MIN_TTL, "DefaultTTL": _DEFAULT_TTL,
            "MaxTTL": _MAX_TTL,
            "ParametersInCacheKeyAndForwardedToOrigin": {
                "EnableAcceptEncodingGzip": False, "EnableAcceptEncodingBrotli": False,
                "HeadersConfig": {"HeaderBehavior": "none"},
                "CookiesConfig": {"CookieBehavior": "whitelist", "Cookies": _items(["lang"])},
                "QueryStringsConfig": {"QueryStringBehavior": "whitelist",
                                       "QueryStrings": _items(["v"])}}}}}],
        "OriginRequestPolicies": [{"OriginRequestPolicy": {"Id": _REQUEST_ID_POLICY,
            "OriginRequestPolicyConfig": {
                "Name": "osilab-request-id",
                "HeadersConfig": {"HeaderBehavior": "whitelist",
                                  "Headers": _items(["X-Request-Id"])},
                "CookiesConfig": {"CookieBehavior": "none"},
                "QueryStringsConfig": {"QueryStringBehavior": "none"}}}}],
        "OriginAddresses": {_STATIC_DOMAIN: static, _ALB_DOMAIN: alb},
        "ViaId": EDGE_ID,
    }  # fmt: skip


_TEMP_PATHS = "".join(
    f"    {kind}_temp_path {{run}}/{kind};\n"
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
)


def _head(run_dir: str) -> str:
    return (
        f"worker_processes 1;\npid {run_dir}/nginx.pid;\nerror_log {run_dir}/nginx-error.log warn;\n"
        "events { worker_connections 512; }\nhttp {\n    default_type text/plain;\n"
        "    types { text/html html; application/javascript js; text/css css; "
        "application/json json; }\n" + _TEMP_PATHS.replace("{run}", run_dir)
    )


def _edge_headers(host: str) -> str:
    """What the edge sends every origin: Via, X-Forwarded-For, X-Amz-Cf-Id (CloudFront-DG)."""
    return (
        f"            proxy_set_header Host {host};\n"
        f'            proxy_set_header Via "1.1 {EDGE_ID}.cloudfront.net (CloudFront)";\n'
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_set_header X-Amz-Cf-Id $request_id;\n"
        '            proxy_set_header Connection "";\n'
    )


def nginx_edge(
    *, address: str, static: str, alb: str, run_dir: str, certificate: str, key: str
) -> str:
    """nginx as the CloudFront edge: the behaviors of :func:`distribution_config`.

    The ``/static/*`` cache key is the host, the path, ``v`` and the ``lang`` cookie
    (the osilab-static cache policy); only those, the request id (the osilab-request-id
    origin request policy) and CloudFront's own headers reach the static origin. The
    ALB behaviors forward everything (AllViewer) and never cache (CachingDisabled).
    """
    via = f"1.1 {EDGE_ID}.cloudfront.net (CloudFront)"
    alb_location = "".join(
        f"        location {prefix} {{\n"
        f'            set $cf_behavior "{name}";\n            set $cf_origin {ALB_ORIGIN};\n'
        + _edge_headers("$host")
        + "            proxy_pass http://alb_origin;\n        }\n"
        for prefix, name in (("/api/", "/api/*"), ("/private/", "/private/*"), ("/", "Default (*)"))
    )
    answers = "".join(
        f"        location {prefix} {{\n"
        f'            set $cf_behavior "{name}";\n'
        f'            add_header X-Cache "{word} from cloudfront" always;\n'
        f'            add_header Via "{via}" always;\n'
        f"            return {answer};\n        }}\n"
        for prefix, name, word, answer in (
            ("/private/", "/private/*", "Error", "403"),
            ("/static/", "/static/*", "Redirect", "301 https://$host$request_uri"),
            ("/api/", "/api/*", "Redirect", "301 https://$host$request_uri"),
            ("/", "Default (*)", "Redirect", "301 https://$host$request_uri"),
        )
    )
    return (
        _head(run_dir)
        + f"""    proxy_cache_path {run_dir}/cache levels=1:2 keys_zone=edge:1m max_size=16m
                     inactive=10m use_temp_path=off;
    map $upstream_cache_status $cf_cache {{
        HIT Hit; STALE Hit; UPDATING Hit; REVALIDATED RefreshHit; default Miss;
    }}
    map $arg_v $cf_query {{ "" ""; default "?v=$arg_v"; }}
    map $cookie_lang $cf_cookie {{ "" ""; default "lang=$cookie_lang"; }}
    log_format edge 'edge client=$remote_addr:$remote_port scheme=$scheme "$request" '
                    'status=$status bytes=$body_bytes_sent rid=$http_x_request_id '
                    'behavior="$cf_behavior" origin=$cf_origin cache=$upstream_cache_status '
                    'xcache="$sent_http_x_cache" upstream=$upstream_addr '
                    'upstream_status=$upstream_status key="$cf_key"';
    access_log {run_dir}/access.log edge;
    keepalive_timeout 15s;
    upstream static_origin {{ server {static}:80; keepalive 4; }}
    upstream alb_origin {{ server {alb}:80; keepalive 4; }}
    server {{
        # The viewer's plain HTTP: CloudFront's ViewerProtocolPolicy answers at the edge.
        listen {address}:80;
        set $cf_origin "-";
        set $cf_key "-";
{answers}    }}
    server {{
        listen {address}:443 ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {certificate};
        ssl_certificate_key {key};
        set $cf_key "-";
        add_header X-Cache "$cf_cache from cloudfront" always;
        add_header Via "{via}" always;
        add_header X-Amz-Cf-Pop "LAB1-P1" always;
        add_header X-Amz-Cf-Id $request_id always;
        proxy_http_version 1.1;
        location /static/ {{
            set $cf_behavior "/static/*";
            set $cf_origin {STATIC_ORIGIN};
            set $cf_key "$host$uri$cf_query|$cf_cookie";
            proxy_cache edge;
            proxy_cache_key $cf_key;
            proxy_cache_revalidate on;
            proxy_cache_valid 200 {_DEFAULT_TTL}s;
            proxy_pass_request_headers off;
{_edge_headers(_STATIC_DOMAIN)}            proxy_set_header User-Agent "Amazon CloudFront";
            proxy_set_header X-Request-Id $http_x_request_id;
            proxy_set_header Cookie $cf_cookie;
            proxy_pass http://static_origin$uri$cf_query;
        }}
{alb_location}    }}
}}
"""
    )


def nginx_static_origin(*, address: str, root: str, run_dir: str) -> str:
    """nginx standing in for S3: the files of :data:`STATIC_FILES`, each with its
    ``Cache-Control``; ETag and Last-Modified (nginx's defaults) make them revalidatable."""
    locations = "".join(
        f'        location = {path} {{ add_header Cache-Control "{control}" always; }}\n'
        for path, (_body, control) in STATIC_FILES.items()
        if control is not None
    )
    return (
        _head(run_dir)
        + f"""    log_format origin 'origin name={STATIC_ORIGIN} client=$remote_addr:$remote_port '
                      '"$request" status=$status bytes=$body_bytes_sent rid=$http_x_request_id '
                      'inm="$http_if_none_match" ims="$http_if_modified_since" '
                      'xff="$http_x_forwarded_for" via="$http_via" host=$host '
                      'ua="$http_user_agent" cookie="$http_cookie"';
    access_log {run_dir}/access.log origin;
    keepalive_timeout 15s;
    server {{
        listen {address}:80;
        root {root};
        add_header X-Served-By {STATIC_ORIGIN} always;
{locations}    }}
}}
"""
    )


_REQUEST_LINE = re.compile(r' "([^"]*)" status=')
_NGINX_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")


def _log_rows(text: str, start: str) -> list[dict[str, str]]:
    """``key=value`` fields of the lines that begin with ``start``, and the quoted request line."""
    rows = []
    for line in text.splitlines():
        if line.startswith(start):
            row = {
                k: _NGINX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), v)
                for k, v in parse_fields(line).items()
            }  # nginx logs a quote as \\x22
            if (match := _REQUEST_LINE.search(line)) is not None:
                row["request"] = match.group(1)
            rows.append(row)
    return rows


def parse_edge(text: str) -> list[dict[str, str]]:
    """The edge's access-log lines (``edge client=... cache=... xcache=...``)."""
    return _log_rows(text, "edge client=")


def parse_origin(text: str) -> list[dict[str, str]]:
    """The static origin's access-log lines (``origin name=static-s3 ...``)."""
    return _log_rows(text, "origin name=")


_XCACHE = re.compile(r"^(\w+) from cloudfront$")


def cdn_truth(
    edge: Iterable[Mapping[str, str]],
    origin: Iterable[Mapping[str, str]],
    alb: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Request id -> what the real edge did (its log) and which origin the request reached
    (the static origin's log, the ALB role's HAProxy log: the back side)."""
    reached = {row["rid"]: row for row in origin if row.get("rid", "-") != "-"}
    truth: dict[str, dict[str, Any]] = {}
    for row in edge:
        rid = row.get("rid", "-")
        if rid == "-":
            continue
        match = _XCACHE.match(row.get("xcache", ""))
        at_origin = reached.get(rid)
        at_alb = alb.get(rid)
        entry: dict[str, Any] = {
            "balancer": "cdn",
            "cache": match.group(1) if match else None,
            "nginx_cache_status": row.get("cache", "-"),
            "behavior": row.get("behavior"),
            "origin": row.get("origin") if row.get("origin") != "-" else None,
            "status": int(row["status"]) if row.get("status", "").isdigit() else None,
            "scheme": row.get("scheme"),
            "upstream": row.get("upstream") if row.get("upstream") != "-" else None,
            "reached": STATIC_ORIGIN if at_origin else ALB_ORIGIN if at_alb else None,
            "source": "edge access log; static origin access log; haproxy log",
        }
        if at_origin:
            logged = {k: (None if v in ("", "-") else v) for k, v in at_origin.items()}
            entry["origin_request"] = {"status": int(at_origin["status"]),
                                       "request": logged.get("request"),
                                       "if_none_match": logged.get("inm"),
                                       "if_modified_since": logged.get("ims"),
                                       "xff": logged.get("xff"), "via": logged.get("via"),
                                       "host": logged.get("host"),
                                       "cookie": logged.get("cookie")}  # fmt: skip
        if at_alb:
            entry["alb"] = dict(at_alb)
        truth[rid] = entry
    return truth
