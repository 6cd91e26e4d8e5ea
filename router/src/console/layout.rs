//! The page shell, HTML escaping and the two languages.
//!
//! Staff at the Department read Vietnamese; partners' engineers and auditors
//! from elsewhere often read English. Every label is written once as a
//! `(vi, en)` pair at the place it is used, so a page can never show a key
//! instead of text and a missing translation is visible in review.

use std::fmt::Write;

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
}

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a query value or path segment (mapping ids keep their `/`).
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

/// The opening of a console table with its header row: `<table id=..><tr><th>..</th>..</tr>`.
/// Rows follow as `<tr><td>..</td></tr>`; the caller closes with `</table>`. An empty
/// `id` leaves the attribute out.
pub fn table_head(id: &str, headers: &[&str]) -> String {
    let mut out = if id.is_empty() {
        String::from("<table><tr>")
    } else {
        format!("<table id=\"{}\"><tr>", esc(id))
    };
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    out
}

/// One table row of already-escaped cell HTML.
pub fn table_row(cells: &[String]) -> String {
    let mut out = String::from("<tr>");
    for c in cells {
        let _ = write!(out, "<td>{c}</td>");
    }
    out.push_str("</tr>");
    out
}

/// A unified diff with added/removed lines coloured.
pub fn diff_html(diff: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let class = if line.starts_with('+') && !line.starts_with("+++") {
            "add"
        } else if line.starts_with('-') && !line.starts_with("---") {
            "del"
        } else {
            ""
        };
        let _ = writeln!(out, "<span class=\"{class}\">{}</span>", esc(line));
    }
    out.push_str("</pre>");
    out
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

/// The whole page around `body`.
pub fn page(lang: Lang, title: &str, who: Option<&str>, body: &str) -> String {
    let nav = if let Some(who) = who {
        format!(
            "<a href=\"/console\">{}</a><a href=\"/console/mappings\">{}</a><a href=\"/console/messages\">{}</a>\
             <a href=\"/console/dead\">{}</a><span class=\"who\">{} · <a href=\"?lang={}\">{}</a> · \
             <form method=\"post\" action=\"/console/logout\"><button class=\"secondary\" type=\"submit\">{}</button></form></span>",
            lang.t("Tổng quan", "Dashboard"),
            lang.t("Ánh xạ", "Mappings"),
            lang.t("Thông điệp", "Messages"),
            lang.t("Thư chết", "Dead letters"),
            esc(who),
            lang.t("en", "vi"),
            lang.t("English", "Tiếng Việt"),
            lang.t("Đăng xuất", "Sign out"),
        )
    } else {
        format!(
            "<span class=\"who\"><a href=\"?lang={}\">{}</a></span>",
            lang.t("en", "vi"),
            lang.t("English", "Tiếng Việt")
        )
    };
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · lienthong</title><link rel=\"stylesheet\" href=\"/console/style.css\"></head>\
         <body><header><strong>lienthong</strong>{nav}</header><main>{body}</main></body></html>",
        lang.code(),
        esc(title)
    )
}
