"""The balancer configuration as frozen records: what a checked AWS document says.

Theory of operation
-------------------
A configuration is a tree, in the words AWS uses for it [ELBv2 API reference]::

    BalancerConfig              the load balancer and its attributes
      TargetGroup...            where traffic can go (targets, algorithm, stickiness)
      Listener...               a protocol and a port
        Rule...                 (ALB) conditions that must all match, and actions
          Condition...          host-header, path-pattern, http-header, ... (Values or RegexValues)
          Action...             in Order: jwt-validation, authenticate-oidc/-cognito, then one
                                terminal forward (weighted groups), redirect, fixed-response
          Transform...          host-header-rewrite, url-rewrite (after the rule has won)
        default actions         what runs when no rule matches
        MutualAuthentication    (HTTPS) off, passthrough or verify against a trust store

Every record is a frozen, slotted dataclass: once :func:`osilab.balancers.config.parse.parse_config`
has checked a document, nothing can change it behind a model's back. The records hold no
parsing and no policy: the checks live in :mod:`~osilab.balancers.config.parse`, the
decisions in the models (:mod:`osilab.balancers.nlb`, :mod:`osilab.balancers.alb`).

The tuples below are the vocabulary AWS accepts for each field (``lb-reference.md`` §1.1-§2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from osilab.errors import ConfigError

__all__ = [
    "APPLICATION",
    "NETWORK",
    "ALB_LISTENER_PROTOCOLS",
    "NLB_LISTENER_PROTOCOLS",
    "ALB_ALGORITHMS",
    "DESYNC_MODES",
    "XFF_MODES",
    "NLB_HASHES",
    "NLB_TABLES",
    "TARGET_TYPES",
    "PROTOCOL_VERSIONS",
    "HEALTH_STATES",
    "HEALTH_ALIASES",
    "BalancerConfig",
    "TargetGroup",
    "HealthChange",
    "Listener",
    "Rule",
    "Condition",
    "QueryPair",
    "Action",
    "WeightedTargetGroup",
    "RedirectConfig",
    "FixedResponseConfig",
    "JwtClaim",
    "JwtValidationConfig",
    "AuthenticateConfig",
    "Transform",
    "MutualAuthentication",
    "TERMINAL_ACTIONS",
    "ATTRIBUTES",
    "attribute_reason",
    "listener_accepts",
    "target_group_name",
]

APPLICATION = "application"
NETWORK = "network"

ALB_LISTENER_PROTOCOLS = ("HTTP", "HTTPS")
NLB_LISTENER_PROTOCOLS = ("TCP", "UDP", "TLS", "TCP_UDP", "QUIC", "TCP_QUIC")
ALB_ALGORITHMS = ("round_robin", "least_outstanding_requests", "weighted_random")
DESYNC_MODES = ("monitor", "defensive", "strictest")
XFF_MODES = ("append", "preserve", "remove")

#: Flow-hash field sets an NLB target group can use (see :mod:`osilab.balancers.hashing`).
NLB_HASHES = ("5-tuple", "5-tuple+seq", "source-ip", "source-ip-proto")
#: How a flow hash becomes a target.
NLB_TABLES = ("maglev", "modulo", "nft-jhash", "round-robin")
#: ``TargetType`` values [ELBv2 API CreateTargetGroup]; an ALB takes instance, ip, lambda,
#: an NLB instance, ip, alb.
TARGET_TYPES = ("instance", "ip", "lambda", "alb")
#: ``ProtocolVersion`` of an ALB target group: what the ALB speaks to the targets.
PROTOCOL_VERSIONS = ("HTTP1", "HTTP2", "GRPC")
#: Target health states a schedule may name (``Health`` / ``HealthChanges``), after
#: :data:`HEALTH_ALIASES`: ``unused`` is not registered (not yet, or no longer).
HEALTH_STATES = ("healthy", "unhealthy", "draining", "unused")
#: describe-target-health states that mean one of :data:`HEALTH_STATES` for routing.
HEALTH_ALIASES = {"initial": "unused", "unavailable": "unhealthy",
                  "unhealthy.draining": "unhealthy"}  # fmt: skip
#: Every attribute osilab knows (load balancer, listener and target group ``Attributes``),
#: as ``(key or fnmatch pattern, None when the model uses it, else why it does not)``.
#: Anything not listed is named as unknown; docs/aws-model.md lists the same reasons.
ATTRIBUTES: tuple[tuple[str, str | None], ...] = (
    ("routing.http.desync_mitigation_mode", None),
    ("routing.http.xff_header_processing.mode", None),
    ("routing.http.xff_client_port.enabled", None),
    ("idle_timeout.timeout_seconds", None),
    ("tcp.idle_timeout.seconds", None),
    ("load_balancing.algorithm.type", None),
    ("stickiness.enabled", None),
    ("stickiness.type", None),
    ("stickiness.lb_cookie.duration_seconds", None),
    ("stickiness.app_cookie.cookie_name", None),
    ("stickiness.app_cookie.duration_seconds", None),
    ("preserve_client_ip.enabled", None),
    ("proxy_protocol_v2.enabled", None),
    ("routing.http.response.server.enabled", None),
    ("routing.http.response.*.header_value", None),
    ("routing.http.request.*.header_name", None),
    ("routing.http.preserve_host_header.enabled",
     "the model forwards Host as the client sent it (after any host-header-rewrite)"),
    ("routing.http.drop_invalid_header_fields.enabled",
     "headers are forwarded as parsed; invalid names are not dropped"),
    ("routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
     "the TLS version and cipher are shown by `osilab tls`, not added as headers"),
    ("routing.http2.enabled", "the HTTP version is read from the capture, not negotiated"),
    ("client_keep_alive.seconds", None),
    ("load_balancing.algorithm.anomaly_mitigation",
     "anomaly detection needs target latencies and errors over time, not one capture's requests"),
    ("load_balancing.cross_zone.enabled", "one zone: cross-zone balancing is not modelled"),
    ("slow_start.duration_seconds", None),
    ("deregistration_delay.timeout_seconds", None),
    ("deregistration_delay.connection_termination.enabled", None),
    ("target_health_state.unhealthy.connection_termination.enabled", None),
    ("target_health_state.unhealthy.draining_interval_seconds", None),
    ("lambda.multi_value_headers.enabled", "Lambda targets are not modelled"),
    ("access_logs.s3.*", "osilab's decisions are the log"),
    ("connection_logs.s3.*", "osilab's decisions are the log"),
    ("health_check_logs.s3.*", "osilab's decisions are the log"),
    ("deletion_protection.enabled", "an operational switch with no effect on traffic"),
    ("waf.fail_open.enabled", "AWS WAF is not modelled"),
    ("dns_record.client_routing_policy", "names are resolved before the capture"),
    ("zonal_shift.config.enabled", "one zone: zonal shift is not modelled"),
)  # fmt: skip


def attribute_reason(key: str) -> str | None:
    """Why attribute ``key`` is not modelled (``None``: the model uses it).

    >>> attribute_reason("routing.http.response.strict_transport_security.header_value") is None
    True
    >>> attribute_reason("routing.http2.enabled")
    'the HTTP version is read from the capture, not negotiated'
    >>> attribute_reason("no.such.attribute")
    'osilab does not know this attribute'
    """
    for pattern, reason in ATTRIBUTES:
        if fnmatchcase(key, pattern):
            return reason
    return "osilab does not know this attribute"


#: The actions that end a rule; exactly one, and last in ``Order`` [ALB-UG load-balancer-listeners.md].
TERMINAL_ACTIONS = ("forward", "redirect", "fixed-response")


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A target's health changes at a moment of the replay.

    ``time`` is an epoch time, or (when below 10^9) seconds after the first packet.
    ``state`` is one of :data:`HEALTH_STATES`: ``"healthy"``, ``"unhealthy"``,
    ``"draining"`` (deregistered: the deregistration delay runs) or ``"unused"``.
    """

    time: float
    target: str
    state: str


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """A target group: where a forward action sends traffic, and how it picks a target.

    Attributes:
        name: the group's name (from ``Name``, or the ARN's ``targetgroup/<name>/`` part).
        protocol, port: the protocol and port towards the targets.
        targets: registered targets, ``"ip:port"``, in registration order (round robin
            starts at the first).
        algorithm: ALB ``load_balancing.algorithm.type``.
        stickiness: ``None``, ``"lb_cookie"`` (ALB, cookie ``AWSALB``), ``"app_cookie"``
            (ALB: the target's own cookie, the ALB's ``AWSALBAPP-N``) or ``"source_ip"`` (NLB).
        stickiness_seconds: ``stickiness.lb_cookie.duration_seconds`` (default 86400), or
            ``stickiness.app_cookie.duration_seconds`` for app_cookie.
        app_cookie_name: ``stickiness.app_cookie.cookie_name`` (app_cookie only).
        preserve_client_ip: NLB ``preserve_client_ip.enabled`` (AWS's default depends on
            the protocol: off for IP targets over TCP/TLS, on for UDP/TCP_UDP).
        proxy_protocol_v2: NLB ``proxy_protocol_v2.enabled``.
        hash: NLB flow-hash fields (``"5-tuple"`` by default).
        table: NLB hash-to-target method, ``"maglev"`` (default), ``"modulo"``, or
            ``"nft-jhash"``: the osilab lab's nftables balancer (``jhash ip saddr . tcp
            sport . ip daddr . tcp dport mod N seed HashSeed``), to check the model
            against the real one.
        hash_seed: the seed of ``"nft-jhash"`` (the lab uses 0x05115EED).
        table_size: Maglev table size M (a prime; default 65537).
        health_changes: scheduled target health changes, in time order.
        target_type: ``TargetType`` (:data:`TARGET_TYPES`); osilab's own format lists
            targets as addresses, so without the key a group holds ``ip`` targets. A
            ``lambda`` group's one target is the function's ARN.
        protocol_version: ALB ``ProtocolVersion`` (HTTP1, HTTP2, GRPC).
        slow_start: ALB ``slow_start.duration_seconds`` (0: off).
        deregistration_delay: ``deregistration_delay.timeout_seconds`` (default 300).
        deregistration_termination: ``deregistration_delay.connection_termination.enabled``
            (NLB: RST the flows still open when the delay ends; default false).
        unhealthy_termination: NLB ``target_health_state.unhealthy.connection_termination.enabled``
            (default true: flows on a target that becomes unhealthy get RST).
        unhealthy_draining: NLB ``target_health_state.unhealthy.draining_interval_seconds``
            (default 0: how long those flows live on before the RST).
        quic_server_ids: NLB QUIC/TCP_QUIC groups: ``(target, QuicServerId)`` pairs
            (:mod:`osilab.balancers.quic_lb`).
    """

    name: str
    protocol: str
    port: int
    targets: tuple[str, ...]
    algorithm: str = "round_robin"
    stickiness: str | None = None
    stickiness_seconds: int = 86400
    preserve_client_ip: bool = False
    proxy_protocol_v2: bool = False
    hash: str = "5-tuple"
    table: str = "maglev"
    table_size: int = 65537
    hash_seed: int = 0
    health_changes: tuple[HealthChange, ...] = ()
    app_cookie_name: str | None = None
    target_type: str = "ip"
    protocol_version: str = "HTTP1"
    slow_start: float = 0.0
    deregistration_delay: float = 300.0
    deregistration_termination: bool = False
    unhealthy_termination: bool = True
    unhealthy_draining: float = 0.0
    quic_server_ids: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class QueryPair:
    """One ``QueryStringConfig`` value: ``Key`` may be ``None`` (any key)."""

    key: str | None
    value: str


@dataclass(frozen=True, slots=True)
class Condition:
    """One rule condition (``RuleCondition``).

    ``values`` holds the patterns (for ``query-string`` see ``query``); ``header_name``
    is the ``HttpHeaderName`` of an ``http-header`` condition. ``regex`` is true when the
    values are ``RegexValues`` (host-header, http-header, path-pattern only; 2025).
    """

    field: str
    values: tuple[str, ...] = ()
    header_name: str | None = None
    query: tuple[QueryPair, ...] = ()
    regex: bool = False

    @property
    def evaluations(self) -> int:
        """How many match evaluations (values) this condition counts for AWS's limits."""
        return len(self.query) if self.field == "query-string" else len(self.values)


@dataclass(frozen=True, slots=True)
class WeightedTargetGroup:
    """A target group inside a forward action, with its weight (0-999)."""

    name: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RedirectConfig:
    """``RedirectConfig``: unset parts keep the request's values (``#{...}``)."""

    status_code: str
    protocol: str = "#{protocol}"
    host: str = "#{host}"
    port: str = "#{port}"
    path: str = "/#{path}"
    query: str = "#{query}"


@dataclass(frozen=True, slots=True)
class FixedResponseConfig:
    """``FixedResponseConfig``: the ALB answers by itself."""

    status_code: str
    content_type: str | None = None
    message_body: str = ""


@dataclass(frozen=True, slots=True)
class JwtClaim:
    """One ``JwtValidationActionAdditionalClaim``: a claim the token must carry.

    ``format`` is ``single-string``, ``string-array`` or ``space-separated-values``.
    """

    name: str
    format: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JwtValidationConfig:
    """``JwtValidationConfig`` of a ``jwt-validation`` action [ALB-UG listener-verify-jwt].

    ``jwks`` holds the RSA keys of the JWKS document read from ``jwks_source`` (a local
    file: osilab reads no network), as ``(kid, modulus n, exponent e)``; ``claims`` are
    the additional claims.
    """

    issuer: str
    jwks_source: str
    jwks: tuple[tuple[str, int, int], ...]
    claims: tuple[JwtClaim, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthenticateConfig:
    """``AuthenticateOidcConfig`` / ``AuthenticateCognitoConfig`` [ALB-UG listener-authenticate-users].

    ``authorization_endpoint`` is where an unauthenticated browser is sent (302);
    ``on_unauthenticated`` is ``authenticate`` (default), ``deny`` (401) or ``allow``.
    """

    kind: str
    authorization_endpoint: str
    client_id: str
    session_cookie: str = "AWSELBAuthSessionCookie"
    scope: str = "openid"
    on_unauthenticated: str = "authenticate"


@dataclass(frozen=True, slots=True)
class Action:
    """A rule action: ``forward``, ``redirect``, ``fixed-response`` (terminal), or
    ``jwt-validation``, ``authenticate-oidc``, ``authenticate-cognito`` (before it).

    A forward action lists one or more target groups with weights;
    ``group_stickiness`` is ``TargetGroupStickinessConfig.Enabled`` (cookie ``AWSALBTG``).
    """

    type: str
    order: int = 1
    target_groups: tuple[WeightedTargetGroup, ...] = ()
    group_stickiness: bool = False
    group_stickiness_seconds: int = 0
    redirect: RedirectConfig | None = None
    fixed_response: FixedResponseConfig | None = None
    jwt: JwtValidationConfig | None = None
    authenticate: AuthenticateConfig | None = None


@dataclass(frozen=True, slots=True)
class Transform:
    """One rule ``Transform``: ``host-header-rewrite`` or ``url-rewrite`` (2025).

    ``regex`` is matched against the Host (host-header-rewrite) or the path and query
    (url-rewrite); ``replace`` may use ``$1``, ``$2``... [ALB-UG rule-transforms].
    """

    type: str
    regex: str
    replace: str


@dataclass(frozen=True, slots=True)
class MutualAuthentication:
    """An HTTPS listener's ``MutualAuthentication`` (mTLS, Nov 2023).

    ``mode`` is ``off``, ``passthrough`` or ``verify``; ``trust_store`` the DER
    certificates of the trust-store PEM file osilab reads instead of ``TrustStoreArn``;
    ``ignore_expiry`` is ``IgnoreClientCertificateExpiry``.
    """

    mode: str = "off"
    trust_store: tuple[bytes, ...] = ()
    trust_store_source: str = ""
    ignore_expiry: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """A listener rule: conditions (AND) and the action(s) that run when all match.

    ``priority`` is the number; ``label`` is how osilab names the rule in messages and
    decisions (the priority as AWS prints it, or ``"default"``).
    """

    priority: int
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    transforms: tuple[Transform, ...] = ()

    @property
    def label(self) -> str:
        return str(self.priority)

    @property
    def action(self) -> Action:
        """The terminal action (forward, redirect or fixed-response): always the last."""
        return self.actions[-1]

    def transform(self, kind: str) -> Transform | None:
        """The rule's ``host-header-rewrite`` or ``url-rewrite`` transform, if any."""
        return next((t for t in self.transforms if t.type == kind), None)


@dataclass(frozen=True, slots=True)
class Listener:
    """A listener: protocol and port, default actions, and (ALB only) rules.

    ``rules`` are kept sorted by ascending priority, the order AWS evaluates them.
    ``idle_timeout`` is the NLB's TCP idle timeout (``tcp.idle_timeout.seconds``,
    default 350) or the ALB's ``idle_timeout.timeout_seconds`` (default 60).
    ``mtls`` is the listener's ``MutualAuthentication``; ``response_headers`` what the
    header-modification attributes add to every response (``routing.http.response.*``),
    ``server_header`` whether responses keep ``Server`` (``...server.enabled``), and
    ``renamed`` the request headers renamed by ``routing.http.request.*.header_name``.
    """

    protocol: str
    port: int
    default_actions: tuple[Action, ...]
    rules: tuple[Rule, ...] = ()
    idle_timeout: float = 350.0
    mtls: MutualAuthentication = MutualAuthentication()
    response_headers: tuple[tuple[str, str], ...] = ()
    server_header: bool = True
    renamed: tuple[tuple[str, str], ...] = ()

    @property
    def default_action(self) -> Action:
        return self.default_actions[-1]


@dataclass(frozen=True, slots=True)
class BalancerConfig:
    """A whole balancer: its type, target groups and listeners, plus LB attributes.

    Attributes:
        type: ``"application"`` (ALB) or ``"network"`` (NLB).
        desync_mitigation_mode: ``routing.http.desync_mitigation_mode`` (ALB).
        xff_mode: ``routing.http.xff_header_processing.mode`` (ALB).
        xff_client_port: ``routing.http.xff_client_port.enabled`` (ALB).
        udp_idle_timeout: the NLB's UDP idle timeout, fixed at 120 s by AWS.
        client_keep_alive: ALB ``client_keep_alive.seconds`` (60-604800, default 3600):
            the longest a client connection lives, however busy.
        seed: osilab's seed for everything random or opaque (weighted random, cookies,
            trace ids), so a replay is reproducible.
        name: the balancer's name, for titles.
        warnings: one line per field accepted but not modelled, "accepted, not
            modelled: FIELD (reason)", each named once (``replay(...).warnings``).
    """

    type: str
    target_groups: tuple[TargetGroup, ...]
    listeners: tuple[Listener, ...]
    desync_mitigation_mode: str = "defensive"
    xff_mode: str = "append"
    xff_client_port: bool = False
    udp_idle_timeout: float = 120.0
    client_keep_alive: float = 3600.0
    seed: int = 0
    name: str = ""
    warnings: tuple[str, ...] = ()
    _groups: dict[str, TargetGroup] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._groups.update({group.name: group for group in self.target_groups})

    @property
    def is_network(self) -> bool:
        return self.type == NETWORK

    def group(self, name: str) -> TargetGroup:
        """The target group called ``name`` (ConfigError when there is none)."""
        try:
            return self._groups[name]
        except KeyError:
            raise ConfigError(f"no target group named {name!r}") from None

    def listener(self, port: int, proto: str | None = None) -> Listener | None:
        """The listener on ``port`` that accepts transport ``proto`` ("tcp"/"udp"), if any."""
        for listener in self.listeners:
            if listener.port != port:
                continue
            if proto is None or listener_accepts(listener.protocol, proto):
                return listener
        return None


def listener_accepts(protocol: str, proto: str) -> bool:
    """Whether a listener of ``protocol`` (``"TCP"``, ``"HTTPS"``...) takes ``proto`` ("tcp"/"udp")."""
    if protocol in ("UDP", "QUIC"):
        return proto == "udp"
    if protocol in ("TCP_UDP", "TCP_QUIC"):
        return proto in ("tcp", "udp")
    return proto == "tcp"  # TCP, TLS, HTTP, HTTPS


def target_group_name(reference: str) -> str:
    """A target group's name from a ``TargetGroupName`` or a ``TargetGroupArn``.

    The ARN form is ``arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID``;
    the name is the part after ``targetgroup/`` up to the next ``/``.

    >>> target_group_name("arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/blue-targets/73e2d6bc24d8a067")
    'blue-targets'
    """
    if reference.startswith("arn:"):
        marker = "targetgroup/"
        if marker not in reference:
            raise ConfigError(f"not a target group ARN (no 'targetgroup/'): {reference!r}")
        return reference.split(marker, 1)[1].split("/", 1)[0]
    return reference
