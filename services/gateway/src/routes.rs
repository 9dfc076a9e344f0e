//! The route table: which public path goes to which service, and how it is treated on the way.
//!
//! One entry per public path pattern. A pattern is a path whose segments are literals, `{name}`
//! (one segment) or a final `**` (the path itself and everything below it). Patterns are compiled
//! once into a segment tree; a lookup walks the path's segments without allocating, and the most
//! specific pattern wins: at each segment a literal beats `{name}`, which beats `**`, backtracking
//! when a more specific branch leads nowhere — so `/v1/products/{id}/reviews` (customer) beats
//! `/v1/products/**` (product), while `/v1/products/{id}/related` still reaches product.
//!
//! The compiled-in table below is the default; `ROUTES_FILE` names a JSON file whose entries
//! replace the default entry with the same pattern or add new ones. `/internal/**` can never be
//! routed.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::ratelimit::RuleKind;

/// Whether a route needs an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No token needed; one that is sent is still verified (a bad one is refused) and the
    /// identity forwarded. The service decides what an anonymous caller may do.
    Public,
    /// The same as `public` at the gateway (the service personalises when a user is known); kept
    /// as a separate word so the table says what the route is for.
    #[default]
    Optional,
    /// A valid token and a live session are required; 401 otherwise.
    Token,
}

impl AuthMode {
    /// Whether requests without a token are refused.
    pub fn requires_token(self) -> bool {
        matches!(self, Self::Token)
    }
}

impl FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Self::Public),
            "optional" => Ok(Self::Optional),
            "token" => Ok(Self::Token),
            other => Err(format!(
                "auth must be public, optional or token, not `{other}`"
            )),
        }
    }
}

/// One entry of the table as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    /// Path pattern, e.g. `/v1/products/**` or `/v1/products/{id}/reviews`.
    pub pattern: String,
    /// The service it goes to (`product`, `order-payment`, ...).
    pub service: String,
    /// Whether a token is needed.
    #[serde(default)]
    pub auth: AuthMode,
    /// How long the service may take to answer (headers); the default when absent.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Largest request body; the default (`BODY_LIMIT_BYTES`) when absent.
    #[serde(default)]
    pub body_limit_bytes: Option<u64>,
    /// Which rate-limit rule applies.
    #[serde(default)]
    pub rate_limit: RuleKind,
    /// An `amr` value (e.g. `otp`) the access token must carry when the caller's role must use
    /// a second factor (ADMIN, SUPER_ADMIN); such a caller without it gets 403
    /// `second-factor-required` here, before the service is asked (see [`crate::mfa`]). Other
    /// roles pass: the service decides what they may do.
    #[serde(default)]
    pub require_amr: Option<String>,
}

impl RouteSpec {
    fn new(pattern: &str, service: &str) -> Self {
        Self {
            pattern: pattern.to_owned(),
            service: service.to_owned(),
            auth: AuthMode::Optional,
            timeout_ms: None,
            body_limit_bytes: None,
            rate_limit: RuleKind::Default,
            require_amr: None,
        }
    }

    /// Administrators must have signed in with a one-time code.
    fn second_factor(mut self) -> Self {
        self.require_amr = Some(auth_client::AMR_OTP.to_owned());
        self
    }

    fn auth(mut self, auth: AuthMode) -> Self {
        self.auth = auth;
        self
    }

    fn rule(mut self, rule: RuleKind) -> Self {
        self.rate_limit = rule;
        self
    }

    fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }
}

/// Size of an upload body by default (10 MB); see `UPLOAD_BODY_LIMIT_BYTES`.
pub const UPLOAD_BODY_LIMIT: u64 = 10 * 1024 * 1024;

/// Marker the default table uses for "the upload body limit".
const UPLOAD: u64 = u64::MAX;

/// The compiled-in table.
pub fn default_table() -> Vec<RouteSpec> {
    use AuthMode::{Public, Token};
    use RuleKind::{Login, Otp, Register, Track};
    let mut table = Vec::new();
    let mut add = |spec: RouteSpec| table.push(spec);
    let prefixes = |service: &'static str, names: &[&str]| -> Vec<RouteSpec> {
        names
            .iter()
            .map(|name| RouteSpec::new(&format!("/v1/{name}/**"), service))
            .collect()
    };

    // auth
    add(RouteSpec::new("/v1/auth/**", "auth"));
    add(RouteSpec::new("/v1/auth/register", "auth")
        .auth(Public)
        .rule(Register));
    add(RouteSpec::new("/v1/auth/login", "auth")
        .auth(Public)
        .rule(Login));
    for otp in [
        "forgot-password",
        "reset-password",
        "verify-email",
        "resend-otp",
    ] {
        add(RouteSpec::new(&format!("/v1/auth/{otp}"), "auth")
            .auth(Public)
            .rule(Otp));
    }
    add(RouteSpec::new("/v1/auth/refresh", "auth").auth(Public));
    // The second step of a two-factor sign-in: a code for a login challenge, limited as logins.
    add(RouteSpec::new("/v1/auth/2fa/verify", "auth")
        .auth(Public)
        .rule(Login));
    // Enrolment (setup, confirm) and disable: reachable with a password-only token, so that
    // administrators can enrol.
    for private in [
        "me",
        "logout",
        "logout-all",
        "sessions/**",
        "change-password",
        "account",
        "2fa/**",
    ] {
        add(RouteSpec::new(&format!("/v1/auth/{private}"), "auth").auth(Token));
    }
    for admin in ["users/**", "keys/**", "audit"] {
        add(RouteSpec::new(&format!("/v1/auth/{admin}"), "auth")
            .auth(Token)
            .second_factor());
    }
    add(RouteSpec::new("/.well-known/jwks.json", "auth").auth(Public));

    // product
    for spec in prefixes(
        "product",
        &[
            "products",
            "categories",
            "ranges",
            "colours",
            "styles",
            "finishes",
            "sizes",
            "sales",
            "packages",
        ],
    ) {
        add(spec);
    }

    // order-payment
    for spec in prefixes(
        "order-payment",
        &[
            "cart",
            "checkout",
            "payments",
            "invoices",
            "refunds",
            "coupons",
            "shipping",
            "tax-rules",
        ],
    ) {
        add(spec);
    }
    add(RouteSpec::new("/v1/orders/**", "order-payment").auth(Token));
    add(RouteSpec::new("/v1/webhooks/stripe", "order-payment").auth(Public));

    // appointment
    for spec in prefixes(
        "appointment",
        &[
            "appointments",
            "appointment-types",
            "availability",
            "showrooms",
            "consultants",
            "brochures",
        ],
    ) {
        add(spec);
    }

    // content
    for spec in prefixes(
        "content",
        &[
            "blog",
            "pages",
            "hero-slides",
            "media-wall",
            "projects",
            "finance",
            "faqs",
            "testimonials",
            "contact",
            "business-enquiries",
            "newsletter",
            "media",
            "accreditations",
        ],
    ) {
        add(spec);
    }
    add(RouteSpec::new("/robots.txt", "content").auth(Public));
    add(RouteSpec {
        body_limit_bytes: Some(UPLOAD),
        ..RouteSpec::new("/v1/uploads/**", "content").timeout_ms(60_000)
    });
    add(RouteSpec::new("/v1/sitemap.xml", "content").auth(Public));
    add(RouteSpec::new("/media/**", "content").auth(Public));

    // customer
    for spec in prefixes(
        "customer",
        &["profile", "customers", "wishlist", "tickets", "loyalty"],
    ) {
        add(spec.auth(Token));
    }
    add(RouteSpec::new("/v1/products/{id}/reviews/**", "customer"));
    add(RouteSpec::new("/v1/products/{id}/rating", "customer"));
    add(RouteSpec::new("/v1/reviews/**", "customer").auth(Token));

    // Staff back-office paths, each under the service that owns the resource.
    for (service, names) in [
        ("customer", &["reviews", "tickets", "loyalty"][..]),
        ("order-payment", &["invoices", "orders"][..]),
        (
            "appointment",
            &[
                "appointments",
                "availability-rules",
                "availability-exceptions",
                "brochures",
                "consultants",
                "showrooms",
                "slots",
            ][..],
        ),
        (
            "content",
            &[
                "blog",
                "pages",
                "contact",
                "business-enquiries",
                "newsletter",
                "hero-slides",
                "projects",
                "finance",
                "faqs",
                "accreditations",
                "testimonials",
            ][..],
        ),
    ] {
        for name in names {
            add(RouteSpec::new(&format!("/v1/admin/{name}/**"), service)
                .auth(Token)
                .second_factor());
        }
    }

    // notification (the WebSocket authenticates with a ticket: browsers cannot send headers)
    add(RouteSpec::new("/v1/notifications/**", "notification").auth(Token));
    add(RouteSpec::new("/v1/notifications/ws", "notification"));
    // one-click unsubscribe links in marketing email: signed tokens, no account needed
    add(RouteSpec::new("/v1/notifications/unsubscribe/{token}", "notification").auth(Public));

    // analytics
    add(RouteSpec::new("/v1/analytics/**", "analytics"));
    add(RouteSpec::new("/v1/analytics/track", "analytics")
        .auth(Public)
        .rule(Track));
    add(RouteSpec::new("/v1/analytics/exports/**", "analytics").timeout_ms(60_000));
    table
}

/// Applies `overrides` to `table`: an entry with the same pattern replaces the default one,
/// others are added.
pub fn merge(mut table: Vec<RouteSpec>, overrides: Vec<RouteSpec>) -> Vec<RouteSpec> {
    for spec in overrides {
        match table.iter_mut().find(|s| s.pattern == spec.pattern) {
            Some(existing) => *existing = spec,
            None => table.push(spec),
        }
    }
    table
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The pattern as configured (access logs and metrics name routes by it).
    pub pattern: String,
    /// Index of the service in [`crate::UPSTREAMS`].
    pub upstream: usize,
    /// The service's name.
    pub service: &'static str,
    /// Token requirement.
    pub auth: AuthMode,
    /// How long the service may take to send its response headers.
    pub timeout: Duration,
    /// Largest request body.
    pub body_limit: u64,
    /// Rate-limit rule.
    pub rule: RuleKind,
    /// The `amr` value administrators' tokens must carry here.
    pub require_amr: Option<String>,
}

/// A table that failed to compile.
#[derive(Debug, thiserror::Error)]
#[error("route `{pattern}`: {reason}")]
pub struct RouteError {
    /// The offending pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One node of the segment tree.
#[derive(Debug, Clone, Default)]
struct Node {
    literals: HashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    /// The route whose pattern ends exactly here.
    exact: Option<usize>,
    /// The route whose `**` starts here (matches one or more further segments).
    below: Option<usize>,
}

impl Node {
    fn find(&self, rest: Option<&str>) -> Option<usize> {
        let Some(rest) = rest else {
            return self.exact;
        };
        let (segment, tail) = match rest.split_once('/') {
            Some((segment, tail)) => (segment, Some(tail)),
            None => (rest, None),
        };
        if let Some(found) = self
            .literals
            .get(segment)
            .and_then(|child| child.find(tail))
        {
            return Some(found);
        }
        if !segment.is_empty()
            && let Some(found) = self.param.as_ref().and_then(|child| child.find(tail))
        {
            return Some(found);
        }
        self.below
    }
}

/// The compiled table.
#[derive(Debug, Clone)]
pub struct RouteTable {
    root: Node,
    routes: Vec<Route>,
}

/// Settings the table's entries fall back to.
#[derive(Debug, Clone, Copy)]
pub struct RouteDefaults {
    /// Timeout of entries without their own.
    pub timeout: Duration,
    /// Body limit of entries without their own.
    pub body_limit: u64,
    /// Body limit of upload entries.
    pub upload_body_limit: u64,
}

impl RouteTable {
    /// Compiles `specs`.
    pub fn compile(specs: &[RouteSpec], defaults: RouteDefaults) -> Result<Self, RouteError> {
        let mut root = Node::default();
        let mut routes = Vec::with_capacity(specs.len());
        let mut seen: HashMap<String, &str> = HashMap::new();
        for spec in specs {
            let error = |reason: String| RouteError {
                pattern: spec.pattern.clone(),
                reason,
            };
            let upstream = crate::UPSTREAMS
                .iter()
                .position(|(name, _)| *name == spec.service)
                .ok_or_else(|| error(format!("unknown service `{}`", spec.service)))?;
            let (segments, wildcard) = parse_pattern(&spec.pattern).map_err(error)?;
            let shape: String = segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => format!("/{l}"),
                    Segment::Param => "/{}".to_owned(),
                })
                .collect::<String>()
                + if wildcard { "/**" } else { "" };
            if let Some(previous) = seen.insert(shape, &spec.pattern) {
                return Err(error(format!("same paths as `{previous}`")));
            }
            let index = routes.len();
            let mut node = &mut root;
            for segment in segments {
                node = match segment {
                    Segment::Literal(literal) => node.literals.entry(literal.into()).or_default(),
                    Segment::Param => node.param.get_or_insert_with(Default::default),
                };
            }
            node.exact = Some(index);
            if wildcard {
                node.below = Some(index);
            }
            routes.push(Route {
                pattern: spec.pattern.clone(),
                upstream,
                service: crate::UPSTREAMS[upstream].0,
                auth: spec.auth,
                timeout: spec
                    .timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(defaults.timeout),
                body_limit: match spec.body_limit_bytes {
                    Some(UPLOAD) => defaults.upload_body_limit,
                    Some(limit) => limit,
                    None => defaults.body_limit,
                },
                rule: spec.rate_limit,
                require_amr: spec.require_amr.clone(),
            });
        }
        Ok(Self { root, routes })
    }

    /// The compiled-in table with the default timeout and body limits: what the services'
    /// OpenAPI documents are checked against ([`RouteTable::unrouted_paths`]).
    pub fn builtin() -> Result<Self, RouteError> {
        Self::compile(
            &default_table(),
            RouteDefaults {
                timeout: Duration::from_secs(30),
                body_limit: 1024 * 1024,
                upload_body_limit: UPLOAD_BODY_LIMIT,
            },
        )
    }

    /// The route `path` belongs to; `None` for unknown paths and anything under `/internal`.
    pub fn find(&self, path: &str) -> Option<&Route> {
        if is_internal(path) {
            return None;
        }
        self.find_indexed(path).map(|(_, route)| route)
    }

    /// The route `path` belongs to, with its index in [`RouteTable::routes`].
    pub fn find_indexed(&self, path: &str) -> Option<(usize, &Route)> {
        if is_internal(path) {
            return None;
        }
        let rest = path.strip_prefix('/')?;
        let index = self.root.find(Some(rest))?;
        self.routes.get(index).map(|route| (index, route))
    }

    /// Every compiled route.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The paths of an OpenAPI document served by `service` that this table does not send to
    /// `service` (paths under `/internal` and the common endpoints excepted): a public route the
    /// gateway would not route.
    pub fn unrouted_paths(&self, service: &str, openapi: &serde_json::Value) -> Vec<String> {
        let Some(paths) = openapi.get("paths").and_then(serde_json::Value::as_object) else {
            return Vec::new();
        };
        paths
            .keys()
            .filter(|path| !is_internal(path) && !is_common(path))
            .filter(|path| self.find(path).is_none_or(|route| route.service != service))
            .cloned()
            .collect()
    }
}

/// Whether `path` is `/internal` or below it (never routed).
pub fn is_internal(path: &str) -> bool {
    path == "/internal" || path.starts_with("/internal/")
}

/// The endpoints every service (and the gateway itself) serves for probes and tools.
pub fn is_common(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics" | "/openapi.json")
}

enum Segment<'a> {
    Literal(&'a str),
    Param,
}

/// Splits a pattern into segments, and whether it ends in `**`.
fn parse_pattern(pattern: &str) -> Result<(Vec<Segment<'_>>, bool), String> {
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err("must start with `/`".to_owned());
    };
    if is_internal(pattern) {
        return Err("`/internal` is never routed".to_owned());
    }
    if is_common(pattern) || pattern == "/docs" || pattern.starts_with("/docs/") {
        return Err("the gateway serves this path itself".to_owned());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    let mut wildcard = false;
    for (position, part) in parts.iter().enumerate() {
        if wildcard {
            return Err("`**` must be the last segment".to_owned());
        }
        if *part == "**" {
            if position == 0 {
                return Err("`/**` would route everything".to_owned());
            }
            wildcard = true;
        } else if part.is_empty() {
            return Err("empty segment".to_owned());
        } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("bad parameter `{part}`"));
            }
            segments.push(Segment::Param);
        } else if part.contains(['{', '}', '*']) {
            return Err(format!("bad segment `{part}`"));
        } else {
            segments.push(Segment::Literal(part));
        }
    }
    Ok((segments, wildcard))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn table() -> RouteTable {
        RouteTable::builtin().unwrap()
    }

    fn service(table: &RouteTable, path: &str) -> Option<&'static str> {
        table.find(path).map(|r| r.service)
    }

    #[test]
    fn the_most_specific_pattern_wins() {
        let t = table();
        assert_eq!(service(&t, "/v1/products"), Some("product"));
        assert_eq!(service(&t, "/v1/products/x"), Some("product"));
        assert_eq!(service(&t, "/v1/products/x/related"), Some("product"));
        assert_eq!(service(&t, "/v1/products/x/reviews"), Some("customer"));
        assert_eq!(service(&t, "/v1/products/x/reviews/r1"), Some("customer"));
        assert_eq!(service(&t, "/v1/products/x/rating"), Some("customer"));
        assert_eq!(service(&t, "/v1/products/x/rating/more"), Some("product"));
        assert_eq!(
            service(&t, "/v1/auth/login").map(|_| t.find("/v1/auth/login").unwrap().rule),
            Some(RuleKind::Login)
        );
        assert_eq!(t.find("/v1/auth/me").unwrap().auth, AuthMode::Token);
        assert_eq!(
            t.find("/v1/auth/sessions/abc").unwrap().auth,
            AuthMode::Token
        );
        assert_eq!(
            t.find("/v1/auth/something-else").unwrap().auth,
            AuthMode::Optional
        );
        assert_eq!(t.find("/v1/notifications").unwrap().auth, AuthMode::Token);
        assert_eq!(
            t.find("/v1/notifications/ws").unwrap().auth,
            AuthMode::Optional
        );
        assert_eq!(
            t.find("/v1/notifications/unsubscribe/djEuYWJj.c2ln")
                .unwrap()
                .auth,
            AuthMode::Public
        );
        assert_eq!(
            t.find("/v1/notifications/preferences").unwrap().auth,
            AuthMode::Token
        );
        assert_eq!(service(&t, "/v1/webhooks/stripe"), Some("order-payment"));
        assert_eq!(service(&t, "/media/2026/01/x.webp"), Some("content"));
        assert_eq!(service(&t, "/.well-known/jwks.json"), Some("auth"));
        assert_eq!(t.find("/v1/uploads").unwrap().body_limit, UPLOAD_BODY_LIMIT);
        let otp = Some("otp".to_owned());
        for admin in [
            "/v1/admin/orders/x",
            "/v1/admin/appointments",
            "/v1/auth/users",
            "/v1/auth/users/x/2fa/reset",
            "/v1/auth/keys/rotate",
            "/v1/auth/audit",
        ] {
            assert_eq!(t.find(admin).unwrap().require_amr, otp, "{admin}");
        }
        for open in [
            "/v1/auth/2fa/setup",
            "/v1/auth/2fa/confirm",
            "/v1/auth/me",
            "/v1/auth/logout",
            "/v1/products",
        ] {
            assert_eq!(t.find(open).unwrap().require_amr, None, "{open}");
        }
        let verify = t.find("/v1/auth/2fa/verify").unwrap();
        assert_eq!(
            (verify.auth, verify.rule),
            (AuthMode::Public, RuleKind::Login)
        );
        assert_eq!(t.find("/v1/auth/2fa/setup").unwrap().auth, AuthMode::Token);
        assert_eq!(t.find("/v1/blog").unwrap().body_limit, 1024 * 1024);
    }

    #[test]
    fn internal_and_unknown_paths_are_not_routed() {
        let t = table();
        for path in [
            "/internal",
            "/internal/products/1",
            "/v1",
            "/v1/unknown",
            "/",
            "/v1/productsx",
            "/v1/webhooks/other",
        ] {
            assert!(t.find(path).is_none(), "{path}");
        }
    }

    #[test]
    fn every_service_has_routes() {
        let t = table();
        for (name, _) in crate::UPSTREAMS {
            assert!(t.routes().iter().any(|r| r.service == *name), "{name}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        let defaults = RouteDefaults {
            timeout: Duration::from_secs(1),
            body_limit: 1,
            upload_body_limit: 1,
        };
        for pattern in [
            "v1/x",
            "/internal/**",
            "/**",
            "/v1/**/x",
            "/v1//x",
            "/v1/{a-b}",
            "/health",
            "/docs/**",
        ] {
            let spec = RouteSpec::new(pattern, "product");
            assert!(RouteTable::compile(&[spec], defaults).is_err(), "{pattern}");
        }
        let spec = RouteSpec::new("/v1/x", "nobody");
        assert!(RouteTable::compile(&[spec], defaults).is_err());
        let twice = [
            RouteSpec::new("/v1/x/**", "product"),
            RouteSpec::new("/v1/x/**", "content"),
        ];
        assert!(RouteTable::compile(&twice, defaults).is_err());
    }

    #[test]
    fn overrides_replace_entries_with_the_same_pattern_and_add_others() {
        let merged = merge(
            default_table(),
            vec![
                RouteSpec::new("/v1/blog/**", "product").timeout_ms(5),
                RouteSpec::new("/v1/new/**", "content"),
            ],
        );
        assert_eq!(merged.len(), default_table().len() + 1);
        let blog = merged.iter().find(|s| s.pattern == "/v1/blog/**").unwrap();
        assert_eq!(blog.service, "product");
    }

    #[test]
    fn spec_paths_not_routed_to_their_service_are_reported() {
        let t = table();
        let spec = serde_json::json!({ "paths": {
            "/v1/products": {}, "/v1/products/{id}": {}, "/v1/products/{productId}/reviews": {},
            "/internal/products/lookup": {}, "/health": {}, "/v1/secret": {}
        }});
        assert_eq!(
            t.unrouted_paths("product", &spec),
            vec![
                "/v1/products/{productId}/reviews".to_owned(),
                "/v1/secret".to_owned()
            ]
        );
    }
}
