//! A small user-agent parser: device class, browser family and OS family.
//!
//! Why not a crate: the maintained parsers either embed the large uap-core regex database
//! (`uaparser`: megabytes of regexes compiled at start and a few microseconds per lookup on
//! the ingest hot path) or are effectively unmaintained (`woothee`, last release 2022). The
//! dashboard needs only coarse classes, which a few ordered substring checks give in well under
//! a microsecond; unknown agents become `OTHER`, never an error.

/// What the dashboard needs from a `User-Agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// `DESKTOP`, `MOBILE`, `TABLET`, `BOT` or `OTHER`.
    pub device: &'static str,
    /// Browser family.
    pub browser: &'static str,
    /// Operating-system family.
    pub os: &'static str,
}

/// Parses `ua` (case-insensitive substring rules, first match wins).
pub fn parse(ua: &str) -> Agent {
    let lower = ua.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    let bot = [
        "bot",
        "crawler",
        "spider",
        "slurp",
        "headless",
        "lighthouse",
        "curl/",
        "wget/",
    ]
    .iter()
    .any(|n| has(n));
    let os = if has("windows") {
        "Windows"
    } else if has("ipad") || has("iphone") || has("ipod") {
        "iOS"
    } else if has("android") {
        "Android"
    } else if has("cros") {
        "ChromeOS"
    } else if has("mac os x") || has("macintosh") {
        "macOS"
    } else if has("linux") {
        "Linux"
    } else {
        "Other"
    };
    let browser = if has("edg/") || has("edga/") || has("edgios/") {
        "Edge"
    } else if has("opr/") || has("opera") {
        "Opera"
    } else if has("samsungbrowser") {
        "Samsung Internet"
    } else if has("firefox/") || has("fxios/") {
        "Firefox"
    } else if has("chrome/") || has("crios/") || has("chromium/") {
        "Chrome"
    } else if has("safari/") {
        "Safari"
    } else if bot {
        "Bot"
    } else {
        "Other"
    };
    let device = if bot {
        "BOT"
    } else if has("ipad") || has("tablet") || (has("android") && !has("mobile")) {
        "TABLET"
    } else if has("mobi") || has("iphone") || has("ipod") {
        "MOBILE"
    } else if os == "Other" && browser == "Other" {
        "OTHER"
    } else {
        "DESKTOP"
    };
    Agent {
        device,
        browser,
        os,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_agents_are_classified() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                ("DESKTOP", "Chrome", "Windows"),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                ("MOBILE", "Safari", "iOS"),
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                ("TABLET", "Safari", "iOS"),
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                ("MOBILE", "Chrome", "Android"),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:132.0) Gecko/20100101 Firefox/132.0",
                ("DESKTOP", "Firefox", "macOS"),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                ("DESKTOP", "Edge", "Windows"),
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                ("BOT", "Bot", "Other"),
            ),
            ("", ("OTHER", "Other", "Other")),
        ];
        for (ua, (device, browser, os)) in cases {
            assert_eq!(
                parse(ua),
                Agent {
                    device,
                    browser,
                    os
                },
                "{ua}"
            );
        }
    }
}
