//! Markdown → sanitised HTML, and reading time.
//!
//! Admins write Markdown; the storefront gets HTML it can insert as is. The HTML pulldown-cmark
//! renders passes through ammonia's allow-list (no scripts, no event handlers, no `javascript:`
//! URLs, `rel="noopener noreferrer"` on links), because Markdown allows raw HTML and an admin
//! account is not a reason to trust every byte it sends.

use pulldown_cmark::{Options, Parser, html};

/// Words a reader gets through in a minute (the usual figure for web copy).
const WORDS_PER_MINUTE: usize = 200;

/// Renders `markdown` as sanitised HTML.
pub fn to_safe_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_FOOTNOTES);
    let parser = Parser::new_ext(markdown, options);
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, parser);
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer"))
        .clean(&unsafe_html)
        .to_string()
}

/// Minutes to read `markdown` at `WORDS_PER_MINUTE` (200), rounded up, at least 1.
pub fn reading_minutes(markdown: &str) -> i32 {
    let words = markdown
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count();
    i32::try_from(words.div_ceil(WORDS_PER_MINUTE).max(1)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_scripts_are_stripped() {
        let html = to_safe_html(
            "# Title\n\nSome *text* [link](https://example.com).\n\n<script>alert(1)</script>\n\n\
             <a href=\"javascript:alert(1)\" onclick=\"x()\">bad</a>",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<em>text</em>"), "{html}");
        assert!(html.contains("rel=\"noopener noreferrer\""), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
    }

    #[test]
    fn reading_time_rounds_up_and_is_at_least_a_minute() {
        assert_eq!(reading_minutes(""), 1);
        assert_eq!(reading_minutes("word ".repeat(200).as_str()), 1);
        assert_eq!(reading_minutes("word ".repeat(201).as_str()), 2);
        assert_eq!(reading_minutes("# - * word"), 1);
    }
}
