//! XML fragments as text: small, strict helpers on top of quick-xml.
//!
//! The decoders in [`super::xml`] turn a whole document into the tree. The
//! connectors and the envelope builders ([`super::soap`], [`super::tax_gip`]) need
//! something else: not a tree of the partner's XML but a few things out of it: the root element's name, the raw inner XML of one element (to re-wrap a body
//! without re-serialising it, so the bytes the mapping produced are the bytes that go
//! out), and the text of one element (a fault code, an `ERROR_CODE`). Names are
//! matched by *local* name so a partner's choice of prefix does not matter.
//! A `DOCTYPE` is refused: partners never need one and it is the door to entity
//! expansion attacks.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Drops a UTF-8 BOM and a leading `<?xml ...?>` declaration.
pub fn strip_declaration(xml: &str) -> &str {
    let s = xml.trim_start_matches('\u{FEFF}').trim_start();
    if s.starts_with("<?xml") {
        if let Some(end) = s.find("?>") {
            return s[end + 2..].trim_start();
        }
    }
    s
}

/// Escapes text for element content.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// Wraps text in CDATA; a `]]>` inside is split across two sections.
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn reader(xml: &str) -> Reader<&[u8]> {
    Reader::from_reader(xml.as_bytes())
}

fn resolve_ref(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

fn err(e: impl std::fmt::Display, r: &Reader<&[u8]>) -> String {
    format!("malformed XML at byte {}: {e}", r.buffer_position())
}

/// The local name of the document's root element.
pub fn root_name(xml: &str) -> Result<String, String> {
    let mut r = reader(xml);
    loop {
        match r.read_event().map_err(|e| err(e, &r))? {
            Event::Start(e) | Event::Empty(e) => return Ok(local(e.name().as_ref()).to_string()),
            Event::DocType(_) => return Err("a DOCTYPE is not accepted".into()),
            Event::Eof => return Err("no root element".into()),
            _ => {}
        }
    }
}

/// The raw inner XML of the first element named `local_name` (any prefix), `""`
/// for an empty element, `None` when absent. The whole document is checked for
/// well-formedness up to that element's end.
pub fn inner<'a>(xml: &'a str, local_name: &str) -> Result<Option<&'a str>, String> {
    let mut r = reader(xml);
    loop {
        match r.read_event().map_err(|e| err(e, &r))? {
            Event::Start(e) if local(e.name().as_ref()) == local_name => {
                let end = e.to_end().into_owned();
                let span = r.read_to_end(end.name()).map_err(|e| err(e, &r))?;
                return Ok(Some(&xml[span.start as usize..span.end as usize]));
            }
            Event::Empty(e) if local(e.name().as_ref()) == local_name => return Ok(Some("")),
            Event::DocType(_) => return Err("a DOCTYPE is not accepted".into()),
            Event::Eof => return Ok(None),
            _ => {}
        }
    }
}

/// The text content (text, CDATA and character references, concatenated, nested
/// elements included) of the first element named `local_name`.
pub fn text(xml: &str, local_name: &str) -> Result<Option<String>, String> {
    let mut r = reader(xml);
    let mut depth = 0usize;
    let mut out = String::new();
    let mut inside = false;
    loop {
        let ev = r.read_event().map_err(|e| err(e, &r))?;
        match ev {
            Event::Start(e) => {
                if inside {
                    depth += 1;
                } else if local(e.name().as_ref()) == local_name {
                    inside = true;
                }
            }
            Event::Empty(e) if !inside && local(e.name().as_ref()) == local_name => {
                return Ok(Some(String::new()))
            }
            Event::End(_) if inside => {
                if depth == 0 {
                    return Ok(Some(out));
                }
                depth -= 1;
            }
            Event::Text(t) if inside => out.push_str(&t.xml10_content()),
            Event::CData(c) if inside => out.push_str(&c.into_inner()),
            Event::GeneralRef(g) if inside => {
                let name = g.into_inner();
                out.push(resolve_ref(&name).ok_or_else(|| format!("unknown entity &{name};"))?);
            }
            Event::DocType(_) => return Err("a DOCTYPE is not accepted".into()),
            Event::Eof => return Ok(None),
            _ => {}
        }
    }
}

/// Checks that a fragment (possibly several sibling elements) is well-formed.
pub fn check_well_formed(fragment: &str) -> Result<(), String> {
    let wrapped = format!("<x>{fragment}</x>");
    let mut r = reader(&wrapped);
    loop {
        match r.read_event().map_err(|e| err(e, &r))? {
            Event::DocType(_) => return Err("a DOCTYPE is not accepted".into()),
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0"?><s:Envelope xmlns:s="u"><s:Body><a:Fault xmlns:a="v"><faultcode>s:Client</faultcode><faultstring>Sai &amp; thiếu &#x41;</faultstring><detail/></a:Fault></s:Body></s:Envelope>"#;

    #[test]
    fn finds_by_local_name() {
        assert_eq!(root_name(DOC).unwrap(), "Envelope");
        assert_eq!(text(DOC, "faultcode").unwrap().as_deref(), Some("s:Client"));
        assert_eq!(
            text(DOC, "faultstring").unwrap().as_deref(),
            Some("Sai & thiếu A")
        );
        assert_eq!(text(DOC, "detail").unwrap().as_deref(), Some(""));
        assert!(inner(DOC, "Body").unwrap().unwrap().starts_with("<a:Fault"));
        assert_eq!(inner(DOC, "Nope").unwrap(), None);
    }

    #[test]
    fn cdata_round_trip_and_doctype() {
        let inner_xml = "<DATA>a]]>b</DATA>";
        let doc = format!("<in_msg>{}</in_msg>", cdata(inner_xml));
        assert_eq!(text(&doc, "in_msg").unwrap().unwrap(), inner_xml);
        assert!(root_name("<!DOCTYPE x [<!ENTITY e 'x'>]><x/>").is_err());
        assert!(check_well_formed("<a><b></a>").is_err());
        assert!(check_well_formed("<a/><b>x</b>").is_ok());
        assert_eq!(
            strip_declaration("\u{FEFF}<?xml version='1.0'?>\n<a/>"),
            "<a/>"
        );
    }
}
