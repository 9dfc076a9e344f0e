//! What we learn about the client from the request: its address (as the gateway saw it), its
//! user agent, and the refresh-token cookie.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "refresh_token";
/// Path the refresh-token cookie is sent to.
pub const REFRESH_COOKIE_PATH: &str = "/v1/auth";
/// Longest user agent kept with a session.
const MAX_USER_AGENT_CHARS: usize = 256;

/// The client's address and user agent.
///
/// The address is the **last** entry of `X-Forwarded-For`: the gateway appends the address of
/// the peer it accepted the connection from, so that entry is the one no client can forge
/// (entries before it are whatever the client sent). Without the header (a direct call in
/// development) it is the TCP peer's address.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    /// The client's address, when known.
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`, truncated.
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientMeta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect());
        Ok(Self {
            ip: forwarded.or(peer),
            user_agent,
        })
    }
}

impl ClientMeta {
    /// The address as text for throttling keys (`unknown` when there is none).
    pub fn ip_text(&self) -> String {
        self.ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_canonical().to_string())
    }

    /// The client's network, kept with its session instead of its address: IPv4 /24, IPv6 /48.
    pub fn ip_network(&self) -> Option<String> {
        self.ip.map(|ip| match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        })
    }
}

/// The refresh token sent in the `refresh_token` cookie, if any.
pub fn refresh_token_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` carrying a refresh token for `max_age_secs`.
pub fn refresh_cookie(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    cookie(token, max_age_secs, secure)
}

/// `Set-Cookie` removing the refresh token.
pub fn clear_refresh_cookie(secure: bool) -> HeaderValue {
    cookie("", 0, secure)
}

fn cookie(value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{REFRESH_COOKIE}={value}; HttpOnly{secure}; SameSite=Strict; Path={REFRESH_COOKIE_PATH}; Max-Age={max_age_secs}"
    );
    // base64url tokens and the fixed attributes are always valid header text.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn meta(xff: Option<&str>) -> ClientMeta {
        let mut request = axum::http::Request::builder();
        if let Some(xff) = xff {
            request = request.header("x-forwarded-for", xff);
        }
        let (mut parts, ()) = request.body(()).unwrap_or_default().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 4000))));
        match ClientMeta::from_request_parts(&mut parts, &()).await {
            Ok(meta) => meta,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn the_last_forwarded_hop_wins_over_what_the_client_claims() {
        let m = meta(Some("6.6.6.6, 203.0.113.7")).await;
        assert_eq!(m.ip_text(), "203.0.113.7");
        assert_eq!(m.ip_network().as_deref(), Some("203.0.113.0/24"));
        assert_eq!(meta(None).await.ip_text(), "10.0.0.9");
        assert_eq!(meta(Some("garbage")).await.ip_text(), "10.0.0.9");
    }

    #[tokio::test]
    async fn ipv6_networks_keep_48_bits() {
        let m = meta(Some("2001:db8:abcd:12::1")).await;
        assert_eq!(m.ip_network().as_deref(), Some("2001:db8:abcd::/48"));
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; refresh_token=abc_-; b=2"),
        );
        assert_eq!(refresh_token_cookie(&headers).as_deref(), Some("abc_-"));
        let set = refresh_cookie("abc", 60, true);
        assert_eq!(
            set.to_str().unwrap_or_default(),
            "refresh_token=abc; HttpOnly; Secure; SameSite=Strict; Path=/v1/auth; Max-Age=60"
        );
    }
}
