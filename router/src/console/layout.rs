//! The page shell, the shared fragments and the two languages.
//!
//! Every page is a [`maud`] template: `html! { ... }` is checked when the hub
//! is compiled, and every value spliced into it with `(value)` is escaped for
//! HTML, in element content and in attribute values alike. Partner data
//! (dossier codes, raw payloads, error texts) reaches these pages, so escaping
//! must not depend on someone remembering to call a function: the only way
//! to put markup on a page without escaping is [`maud::PreEscaped`], which
//! the console does not use (`tests/architecture.rs` keeps it that way).
//!
//! Staff at the Department read Vietnamese; partners' engineers and auditors
//! from elsewhere often read English. Every label is written once as a
//! `(vi, en)` pair at the place it is used, so a page can never show a key
//! instead of text and a missing translation is visible in review.

use std::fmt::Write;

use maud::{html, Markup, DOCTYPE};

/// The console language: Vietnamese by default, English with `?lang=en` (remembered in a cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    /// Pick the Vietnamese or the English text.
    pub fn t(self, vi: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Vi => vi,
            Lang::En => en,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
    /// The other language: what the header's language link switches to.
    fn other(self) -> (&'static str, &'static str) {
        match self {
            Lang::Vi => ("en", "English"),
            Lang::En => ("vi", "Tiếng Việt"),
        }
    }
}

/// Percent-encode a query value or path segment (mapping ids keep their `/`).
/// This makes a value safe inside a URL; the template then escapes the URL
/// for the attribute it is in.
pub fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A table's header row.
pub fn header_row(headers: &[&str]) -> Markup {
    html! { tr { @for h in headers { th { (h) } } } }
}

/// A unified diff with added/removed lines coloured.
pub fn diff(diff: &str) -> Markup {
    html! {
        pre.diff {
            @for line in diff.lines() {
                @let class = if line.starts_with('+') && !line.starts_with("+++") {
                    "add"
                } else if line.starts_with('-') && !line.starts_with("---") {
                    "del"
                } else {
                    ""
                };
                span class=(class) { (line) } "\n"
            }
        }
    }
}

/// Epoch ms as `yyyy-MM-dd HH:mm:ss` in Asia/Ho_Chi_Minh.
pub fn time(ms: i64) -> String {
    use chrono::TimeZone;
    chrono_tz::Asia::Ho_Chi_Minh
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The whole page around `body`; `who` (the signed-in user) adds the navigation.
pub fn page(lang: Lang, title: &str, who: Option<&str>, body: Markup) -> Markup {
    let (other, other_name) = lang.other();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width";
                title { (title) " · lienthong" }
                link rel="stylesheet" href="/console/style.css";
            }
            body {
                header {
                    strong { "lienthong" }
                    @if let Some(who) = who {
                        a href="/console" { (lang.t("Tổng quan", "Dashboard")) }
                        a href="/console/mappings" { (lang.t("Ánh xạ", "Mappings")) }
                        a href="/console/messages" { (lang.t("Thông điệp", "Messages")) }
                        a href="/console/dead" { (lang.t("Thư chết", "Dead letters")) }
                        span.who {
                            (who) " · "
                            a href={ "?lang=" (other) } { (other_name) }
                            " · "
                            form method="post" action="/console/logout" {
                                button.secondary type="submit" { (lang.t("Đăng xuất", "Sign out")) }
                            }
                        }
                    } @else {
                        span.who { a href={ "?lang=" (other) } { (other_name) } }
                    }
                }
                main { (body) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the templates promise: a value from a partner is text, never markup,
    /// in content and in attributes.
    #[test]
    fn spliced_values_are_escaped() {
        let hostile = r#"<img src=x onerror="alert(1)">&'"#;
        let out = page(
            Lang::En,
            hostile,
            Some(hostile),
            html! { p title=(hostile) { (hostile) } (diff(&format!("+{hostile}"))) },
        )
        .into_string();
        assert!(!out.contains("<img"), "{out}");
        assert!(!out.contains(r#"="alert"#), "{out}");
        assert!(
            out.contains("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;"),
            "{out}"
        );
    }

    #[test]
    fn url_encodes_everything_but_path_characters() {
        assert_eq!(url("lis/tax-x_1.~"), "lis/tax-x_1.~");
        assert_eq!(url("a b&c=\"d\""), "a%20b%26c%3D%22d%22");
    }
}
