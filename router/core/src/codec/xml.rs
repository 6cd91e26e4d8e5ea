//! XML ⇄ tree: the convention administrators read when they write mappings and schemas.
//!
//! XML and JSON do not have the same shape, so the hub fixes one convention and uses
//! it everywhere (XML messages, the SOAP body, the tax `<DATA>` document). It is the
//! familiar "Badgerfish-lite" convention, chosen so that a plain data document such
//! as `<HoSo><MaHoSo>000.00.32.H19-210708-0032</MaHoSo></HoSo>` reads as plain JSON:
//!
//! | XML | tree |
//! |---|---|
//! | the document `<HoSo>…</HoSo>` | `{"HoSo": …}`: one key, the document element. ([`crate::schema::MessageSchema::decode`] strips this key, so schemas and mappings see the content of the document element and the schema's `x-lienthong.xml.root` names it.) |
//! | text-only element `<MaHoSo>049090000123</MaHoSo>` | a string `"049090000123"`, exactly as written: never a number, leading zeros and whitespace kept |
//! | empty element `<MA_GCN/>` or `<MA_GCN></MA_GCN>` | the empty string `""` |
//! | attribute `id="101"` | `"@id": "101"` (attribute values are normalised as XML requires: a raw TAB or newline becomes a space) |
//! | element with attributes and text `<Gia donVi="VND">50000</Gia>` | `{"@donVi": "VND", "#text": "50000"}` |
//! | element with children | an object, one key per child name, in document order (attributes first) |
//! | repeated siblings `<ROW/><ROW/>` | an array under one key, even if other elements came between them |
//! | a single element whose path is in the schema's [`ArrayPaths`] | an array of one |
//! | CDATA `<![CDATA[a<b]]>` | merged into the element's text (`"a<b"`) |
//! | entity and character references `&amp;`, `&#7879;` | resolved; only the five predefined entities exist |
//! | comments, processing instructions, the XML declaration | dropped |
//! | whitespace-only text between child elements (indentation) | dropped |
//! | mixed content `<p>Hi <b>x</b> there</p>` | the text pieces are concatenated in order and trimmed at both ends, under `"#text"`; their position between the children is lost. None of our partners' formats has mixed content; the rule only guarantees nothing is silently dropped. |
//!
//! **Namespaces.** Element and attribute names keep their prefix exactly as written
//! (`"gip:xuLyTruyVanMsg"`, `"@wsu:Id"`) and `xmlns`/`xmlns:*` declarations are dropped,
//! so a mapping rule reads `gip:xuLyTruyVanMsg.in_msg`. The hub does not resolve
//! prefixes: partners use fixed prefixes, and a name with its prefix is what an
//! administrator sees in the partner's documentation. On encode the declarations come
//! from [`EncodeOptions::namespaces`] (from the schema's `x-lienthong.xml.namespaces`)
//! and are written on the document element; key `""` is the default namespace.
//!
//! **Encoding (tree → XML)** is the inverse: arrays become repeated elements (an empty
//! array writes nothing), `"@name"` becomes an attribute, `"#text"` becomes text written
//! before the children, `null` becomes an empty element (`<A/>`), numbers and booleans
//! are written as their text, and all text is escaped (`&`, `<`, `>`, and in attributes
//! `"` and TAB/CR/LF as character references so they survive attribute normalisation).
//! Characters XML 1.0 cannot carry (most C0 controls) are an error, not silently lost.
//!
//! **Refused on decode:** input over [`limits::MAX_BODY_BYTES`], bytes that are not
//! UTF-8 (or a declaration naming another encoding), `<!DOCTYPE …>` (and therefore every
//! `<!ENTITY …>`: no entity expansion, no external entities), unknown entities,
//! nesting deeper than [`limits::MAX_DEPTH`] elements, mismatched or unclosed tags, a
//! second document element, text outside the document element, characters not allowed
//! in XML 1.0, and invalid names. Each error gives `line L, column C`.
//!
//! Round trip: for any document this module decodes, `decode(encode(decode(x)))`
//! equals `decode(x)` with the same [`ArrayPaths`] (the fuzz target checks it).

use indexmap::IndexMap;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde_json::{Map, Value};

use super::{text, ArrayPaths, CodecError, DecodeOptions, EncodeOptions};
use crate::limits;

const FORMAT: &str = "xml";

/// Decodes an XML document into `{"<document element>": <content>}`.
pub fn decode(bytes: &[u8], opts: &DecodeOptions) -> Result<Value, CodecError> {
    let doc = decode_document(FORMAT, bytes, opts.array_paths)?;
    let mut map = Map::new();
    map.insert(doc.root, doc.content);
    Ok(Value::Object(map))
}

/// Encodes a tree as an XML document with an XML declaration (see [`EncodeOptions::xml_root`]).
pub fn encode(tree: &Value, opts: &EncodeOptions) -> Result<Vec<u8>, CodecError> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_document(FORMAT, &mut out, tree, opts)?;
    Ok(out.into_bytes())
}

/// A decoded document: the document element's name, its content, and the namespace
/// declarations written on it (prefix → URI, `""` for the default namespace).
pub(crate) struct Document {
    pub root: String,
    pub content: Value,
    pub namespaces: IndexMap<String, String>,
}

/// Size, UTF-8 and parse, labelling errors with `format`.
pub(crate) fn decode_document(
    format: &'static str,
    bytes: &[u8],
    array_paths: Option<&ArrayPaths>,
) -> Result<Document, CodecError> {
    text::check_size(format, bytes, limits::MAX_BODY_BYTES)?;
    let text = text::utf8(format, bytes)?;
    parse(format, text, array_paths)
}

/// An element being read.
struct Frame {
    name: String,
    /// `/`-joined element names below the document element ("" for the document element).
    path: String,
    /// Attributes (`@name`) then children, in document order.
    map: Map<String, Value>,
    text: String,
    has_children: bool,
    /// Byte offset of the start tag, for "never closed" errors.
    start: usize,
}

/// Parses a UTF-8 document (BOM already stripped).
pub(crate) fn parse(
    format: &'static str,
    text: &str,
    array_paths: Option<&ArrayPaths>,
) -> Result<Document, CodecError> {
    let err = |offset: usize, message: String| {
        CodecError::at(format, text::position(text, offset), message)
    };
    let too_many = |offset: usize| {
        err(
            offset,
            format!(
                "more than {} elements and attributes in one document (router::limits::MAX_NODES): \
                 split it into several messages",
                limits::MAX_NODES
            ),
        )
    };
    if let Some((offset, c)) = text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        return Err(err(
            offset,
            format!("character U+{:04X} is not allowed in XML 1.0", c as u32),
        ));
    }
    let array_paths = array_paths.filter(|p| !p.is_empty());

    let mut reader = Reader::from_str(text);
    reader.config_mut().check_comments = true;
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Document> = None;
    let mut root_namespaces = IndexMap::new();
    // Elements and attributes so far: the tree's size, bounded like JSON's.
    let mut nodes = 0usize;

    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                return Err(err(at, format!("malformed XML: {e}")));
            }
        };
        match event {
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding() {
                    let enc = encoding.to_ascii_lowercase();
                    if enc != "utf-8" && enc != "utf8" {
                        return Err(err(
                            before,
                            format!(
                                "the XML declaration says encoding=\"{encoding}\"; the hub accepts UTF-8 only \
                                 (convert the document and declare encoding=\"UTF-8\")"
                            ),
                        ));
                    }
                }
            }
            Event::DocType(_) => {
                return Err(err(
                    before,
                    "<!DOCTYPE> is not accepted: DTDs and <!ENTITY> declarations are refused \
                     (entity expansion and external entities are an attack vector); remove the DOCTYPE"
                        .into(),
                ));
            }
            Event::PI(_) | Event::Comment(_) => {}
            Event::Start(start) => {
                nodes += 1 + start.attributes().count();
                if nodes > limits::MAX_NODES {
                    return Err(too_many(before));
                }
                let frame = open(
                    format,
                    text,
                    &start,
                    before,
                    &stack,
                    root.is_some(),
                    &mut root_namespaces,
                )?;
                stack.push(frame);
            }
            Event::Empty(start) => {
                nodes += 1 + start.attributes().count();
                if nodes > limits::MAX_NODES {
                    return Err(too_many(before));
                }
                let frame = open(
                    format,
                    text,
                    &start,
                    before,
                    &stack,
                    root.is_some(),
                    &mut root_namespaces,
                )?;
                close(
                    frame,
                    &mut stack,
                    &mut root,
                    &mut root_namespaces,
                    array_paths,
                );
            }
            Event::End(_) => {
                // quick-xml has already checked that the name matches the open tag.
                let Some(frame) = stack.pop() else {
                    return Err(err(
                        before,
                        "closing tag without a matching opening tag".into(),
                    ));
                };
                close(
                    frame,
                    &mut stack,
                    &mut root,
                    &mut root_namespaces,
                    array_paths,
                );
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(err(before, "text outside the document element".into())),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(frame) => frame.text.push_str(&c.xml10_content()),
                None => return Err(err(before, "CDATA outside the document element".into())),
            },
            Event::GeneralRef(r) => {
                let resolved = resolve_reference(&r).map_err(|m| err(before, m))?;
                match stack.last_mut() {
                    Some(frame) => frame.text.push(resolved),
                    None => {
                        return Err(err(
                            before,
                            "entity reference outside the document element".into(),
                        ))
                    }
                }
            }
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(err(
            text.len(),
            format!(
                "element <{}> opened at {} is never closed (the document ends early)",
                open.name,
                text::position(text, open.start)
            ),
        ));
    }
    root.ok_or_else(|| {
        err(
            text.len(),
            "no document element: the input is empty or only comments".into(),
        )
    })
}

/// Reads a start tag into a new frame (attributes, namespace declarations, checks).
fn open(
    format: &'static str,
    text: &str,
    start: &BytesStart,
    offset: usize,
    stack: &[Frame],
    root_done: bool,
    root_namespaces: &mut IndexMap<String, String>,
) -> Result<Frame, CodecError> {
    let err = |message: String| CodecError::at(format, text::position(text, offset), message);
    let name = start.name().as_ref().to_string();
    if !is_xml_name(&name) {
        return Err(err(format!("invalid element name <{name}>")));
    }
    if stack.is_empty() && root_done {
        return Err(err(format!(
            "second document element <{name}>: a document has exactly one"
        )));
    }
    if stack.len() >= limits::MAX_DEPTH {
        return Err(err(format!(
            "elements nested deeper than {} levels (router::limits::MAX_DEPTH) at <{name}>",
            limits::MAX_DEPTH
        )));
    }
    let mut map = Map::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| err(format!("malformed attribute in <{name}>: {e}")))?;
        let key = attr.key.as_ref();
        if !is_xml_name(key) {
            return Err(err(format!("invalid attribute name {key:?} in <{name}>")));
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| err(format!("attribute {key} of <{name}>: {e}")))?;
        if let Some(c) = value.chars().find(|&c| !is_xml_char(c)) {
            return Err(err(format!(
                "attribute {key} of <{name}>: character U+{:04X} is not allowed in XML 1.0",
                c as u32
            )));
        }
        if key == "xmlns" || key.starts_with("xmlns:") {
            if stack.is_empty() {
                let prefix = key.strip_prefix("xmlns:").unwrap_or("");
                root_namespaces.insert(prefix.to_string(), value.into_owned());
            }
            continue;
        }
        map.insert(format!("@{key}"), Value::String(value.into_owned()));
    }
    let path = match stack.last() {
        None => String::new(),
        Some(parent) if parent.path.is_empty() => name.clone(),
        Some(parent) => format!("{}/{name}", parent.path),
    };
    Ok(Frame {
        name,
        path,
        map,
        text: String::new(),
        has_children: false,
        start: offset,
    })
}

/// Turns a finished frame into its value and attaches it to its parent (or makes it the root).
fn close(
    frame: Frame,
    stack: &mut [Frame],
    root: &mut Option<Document>,
    root_namespaces: &mut IndexMap<String, String>,
    array_paths: Option<&ArrayPaths>,
) {
    let Frame {
        name,
        path,
        mut map,
        text,
        has_children,
        ..
    } = frame;
    let value = if map.is_empty() && !has_children {
        Value::String(text)
    } else {
        let text = if has_children {
            text.trim()
        } else {
            text.as_str()
        };
        if !text.is_empty() {
            map.insert("#text".into(), Value::String(text.to_string()));
        }
        Value::Object(map)
    };
    let Some(parent) = stack.last_mut() else {
        *root = Some(Document {
            root: name,
            content: value,
            namespaces: std::mem::take(root_namespaces),
        });
        return;
    };
    parent.has_children = true;
    match parent.map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            let value = if array_paths.is_some_and(|p| p.contains(&path)) {
                Value::Array(vec![value])
            } else {
                value
            };
            parent.map.insert(name, value);
        }
    }
}

/// Resolves `&name;` / `&#N;` / `&#xN;` to a character.
fn resolve_reference(r: &BytesRef) -> Result<char, String> {
    let name: &str = r;
    if r.is_char_ref() {
        let c = r
            .resolve_char_ref()
            .map_err(|e| format!("bad character reference &{name};: {e}"))?
            .ok_or_else(|| format!("bad character reference &{name};"))?;
        if !is_xml_char(c) {
            return Err(format!(
                "character reference &{name}; is U+{:04X}, not allowed in XML 1.0",
                c as u32
            ));
        }
        return Ok(c);
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => Err(format!(
            "unknown entity &{name};: only &lt; &gt; &amp; &apos; &quot; and character references are allowed \
             (write the character itself in UTF-8)"
        )),
    }
}

/// Characters allowed in an XML 1.0 document (`Char` production; surrogates cannot occur in `str`).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A (slightly permissive) XML 1.0 `Name`: ASCII letters, `_`, `:` or any non-ASCII
/// letter first; then also digits, `-` and `.`.
pub(crate) fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let start_ok = |c: char| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (!c.is_ascii() && c.is_alphabetic())
    };
    start_ok(first)
        && chars.all(|c| {
            start_ok(c)
                || c.is_ascii_digit()
                || c == '-'
                || c == '.'
                || (!c.is_ascii() && c.is_alphanumeric())
        })
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// Writes the document element (without XML declaration) for `tree` and `opts`.
pub(crate) fn write_document(
    format: &'static str,
    out: &mut String,
    tree: &Value,
    opts: &EncodeOptions,
) -> Result<(), CodecError> {
    let (root, content, mut path) = match opts.xml_root {
        Some(root) => (root, tree, String::new()),
        None => match tree {
            Value::Object(map) if map.len() == 1 => {
                let (k, v) = map.iter().next().expect("len is 1");
                (k.as_str(), v, format!("/{}", pointer_escape(k)))
            }
            _ => {
                return Err(CodecError::general(
                    format,
                    "without an xml root name the tree must be an object with exactly one key, \
                     the document element (e.g. {\"HoSo\": {...}}); set x-lienthong.xml.root in the schema",
                ))
            }
        },
    };
    if content.is_array() {
        return Err(CodecError::at(
            format,
            path_or_root(&path),
            "the document element cannot be an array",
        ));
    }
    let mut ns_attrs = Vec::new();
    for (prefix, uri) in opts.namespaces.into_iter().flatten() {
        let name = if prefix.is_empty() {
            "xmlns".to_string()
        } else {
            format!("xmlns:{prefix}")
        };
        ns_attrs.push((name, uri.as_str()));
    }
    Writer { format, out }.element(root, content, &ns_attrs, 1, &mut path)
}

struct Writer<'a> {
    format: &'static str,
    out: &'a mut String,
}

impl Writer<'_> {
    fn element(
        &mut self,
        name: &str,
        value: &Value,
        extra_attrs: &[(String, &str)],
        depth: usize,
        path: &mut String,
    ) -> Result<(), CodecError> {
        let format = self.format;
        let fail =
            |path: &str, message: String| CodecError::at(format, path_or_root(path), message);
        if !is_xml_name(name) {
            return Err(fail(
                path,
                format!("{name:?} is not a valid XML element name"),
            ));
        }
        if depth > limits::MAX_DEPTH {
            return Err(fail(
                path,
                format!(
                    "elements nested deeper than {} levels (router::limits::MAX_DEPTH)",
                    limits::MAX_DEPTH
                ),
            ));
        }
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                if item.is_array() {
                    return Err(fail(
                        path,
                        "an array directly inside an array cannot be written as XML".into(),
                    ));
                }
                self.element(name, item, extra_attrs, depth, path)?;
                path.truncate(len);
            }
            return Ok(());
        }
        self.out.push('<');
        self.out.push_str(name);
        for (attr, v) in extra_attrs {
            self.attribute(attr, v, path)?;
        }
        match value {
            Value::Null => {
                self.out.push_str("/>");
                return Ok(());
            }
            Value::Object(map) => {
                for (k, v) in map {
                    let Some(attr) = k.strip_prefix('@') else {
                        continue;
                    };
                    let len = path.len();
                    path.push('/');
                    path.push_str(&pointer_escape(k));
                    if !is_xml_name(attr) {
                        return Err(fail(
                            path,
                            format!("{attr:?} is not a valid XML attribute name"),
                        ));
                    }
                    match v {
                        Value::Null => {}
                        Value::String(s) => self.attribute(attr, s, path)?,
                        Value::Number(_) | Value::Bool(_) => {
                            self.attribute(attr, &v.to_string(), path)?
                        }
                        _ => {
                            return Err(fail(
                                path,
                                "an attribute value must be a string, number or boolean".into(),
                            ))
                        }
                    }
                    path.truncate(len);
                }
                let has_content = map
                    .iter()
                    .any(|(k, v)| !(k.starts_with('@') || (k == "#text" && v.is_null())));
                if !has_content {
                    self.out.push_str("/>");
                    return Ok(());
                }
                self.out.push('>');
                if let Some(t) = map.get("#text") {
                    let len = path.len();
                    path.push_str("/#text");
                    match t {
                        Value::Null => {}
                        Value::String(s) => self.text(s, path)?,
                        Value::Number(_) | Value::Bool(_) => self.text(&t.to_string(), path)?,
                        _ => {
                            return Err(fail(
                                path,
                                "\"#text\" must be a string, number or boolean".into(),
                            ))
                        }
                    }
                    path.truncate(len);
                }
                for (k, v) in map {
                    if k.starts_with('@') || k == "#text" {
                        continue;
                    }
                    let len = path.len();
                    path.push('/');
                    path.push_str(&pointer_escape(k));
                    if k.starts_with('#') {
                        return Err(fail(
                            path,
                            format!("unknown special key {k:?} (only \"#text\" is known)"),
                        ));
                    }
                    self.element(k, v, &[], depth + 1, path)?;
                    path.truncate(len);
                }
            }
            Value::String(s) => {
                self.out.push('>');
                self.text(s, path)?;
            }
            Value::Number(_) | Value::Bool(_) => {
                self.out.push('>');
                self.text(&value.to_string(), path)?;
            }
            Value::Array(_) => unreachable!("handled above"),
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        Ok(())
    }

    fn attribute(&mut self, name: &str, value: &str, path: &str) -> Result<(), CodecError> {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        for c in value.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                '\t' => self.out.push_str("&#9;"),
                '\n' => self.out.push_str("&#10;"),
                '\r' => self.out.push_str("&#13;"),
                c if is_xml_char(c) => self.out.push(c),
                c => return Err(self.bad_char(c, path)),
            }
        }
        self.out.push('"');
        Ok(())
    }

    fn text(&mut self, value: &str, path: &str) -> Result<(), CodecError> {
        for c in value.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '\r' => self.out.push_str("&#13;"),
                c if is_xml_char(c) => self.out.push(c),
                c => return Err(self.bad_char(c, path)),
            }
        }
        Ok(())
    }

    fn bad_char(&self, c: char, path: &str) -> CodecError {
        CodecError::at(
            self.format,
            path_or_root(path),
            format!(
                "character U+{:04X} cannot be written in XML 1.0; remove it in the mapping",
                c as u32
            ),
        )
    }
}

/// Makes single values arrays where `paths` says so, in a tree decoded without them.
///
/// Used when the array paths are relative to an element that is not the document
/// element (the first child of a SOAP body). `prefix` is the `/`-joined path of `value`.
pub(crate) fn apply_array_paths(value: &mut Value, paths: &ArrayPaths, prefix: &str) {
    match value {
        Value::Array(items) => {
            for item in items {
                apply_array_paths(item, paths, prefix);
            }
        }
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key.starts_with('@') || key.starts_with('#') {
                    continue;
                }
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}/{key}")
                };
                if !child.is_array() && paths.contains(&path) {
                    let single = child.take();
                    *child = Value::Array(vec![single]);
                }
                apply_array_paths(child, paths, &path);
            }
        }
        _ => {}
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub(crate) fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn path_or_root(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dec(xml: &str) -> Value {
        decode(xml.as_bytes(), &DecodeOptions::default()).unwrap()
    }

    fn dec_err(xml: &str) -> CodecError {
        decode(xml.as_bytes(), &DecodeOptions::default()).unwrap_err()
    }

    fn roundtrip(xml: &str, paths: Option<&ArrayPaths>) -> Value {
        let opts = DecodeOptions {
            array_paths: paths,
            file_name: None,
        };
        let tree = decode(xml.as_bytes(), &opts).unwrap();
        let bytes = encode(&tree, &EncodeOptions::default()).unwrap();
        let again = decode(&bytes, &opts).unwrap();
        assert_eq!(
            tree,
            again,
            "round trip changed the tree; encoded:\n{}",
            String::from_utf8_lossy(&bytes)
        );
        tree
    }

    #[test]
    fn convention() {
        let tree = roundtrip(
            r#"<?xml version="1.0" encoding="utf-8"?>
            <!-- a comment -->
            <HoSo xmlns="urn:x" xmlns:a="urn:a" id="7">
              <MaHoSo>000.00.32.H19-210708-0032</MaHoSo>
              <CCCD>049090000123</CCCD>
              <Rong/><Rong2></Rong2>
              <Gia donVi="VND">50000</Gia>
              <a:Tep id="1">x</a:Tep>
              <Khac/>
              <a:Tep id="2">y</a:Tep>
              <Ten>  Nguyễn &amp; <![CDATA[<b>]]> &#7879; </Ten>
            </HoSo>"#,
            None,
        );
        assert_eq!(
            tree,
            json!({"HoSo": {
                "@id": "7",
                "MaHoSo": "000.00.32.H19-210708-0032",
                "CCCD": "049090000123",
                "Rong": "", "Rong2": "",
                "Gia": {"@donVi": "VND", "#text": "50000"},
                "a:Tep": [{"@id": "1", "#text": "x"}, {"@id": "2", "#text": "y"}],
                "Khac": "",
                "Ten": "  Nguyễn & <b> ệ "
            }})
        );
    }

    #[test]
    fn array_paths_make_single_elements_arrays() {
        let paths: ArrayPaths = ["TaiLieu/Tep", "Dong"].into_iter().collect();
        let tree = roundtrip(
            "<R><TaiLieu><Tep>a</Tep></TaiLieu><Dong><X>1</X></Dong><Khac>k</Khac></R>",
            Some(&paths),
        );
        assert_eq!(
            tree,
            json!({"R": {"TaiLieu": {"Tep": ["a"]}, "Dong": [{"X": "1"}], "Khac": "k"}})
        );
        // Without the paths, a single element stays a value.
        assert_eq!(
            dec("<R><Dong><X>1</X></Dong></R>"),
            json!({"R": {"Dong": {"X": "1"}}})
        );
    }

    #[test]
    fn mixed_content_is_kept_as_trimmed_text() {
        assert_eq!(
            dec("<p> Hi <b>x</b> there </p>"),
            json!({"p": {"b": "x", "#text": "Hi  there"}})
        );
    }

    #[test]
    fn encode_with_root_and_namespaces() {
        let mut ns = IndexMap::new();
        ns.insert(String::new(), "http://lis.quangnam.gov.vn/hoso".to_string());
        ns.insert(
            "xsi".to_string(),
            "http://www.w3.org/2001/XMLSchema-instance".to_string(),
        );
        let tree = json!({
            "MaHoSo": "049",
            "SoTien": 1500000000,
            "Ok": true,
            "Trong": null,
            "Rong": [],
            "TaiLieu": {"TepDinhKem": [{"@id": "1", "Ten": "a<b>&\"c\""}, {"@id": "2\t\n", "Ten": "x\r\ny"}]}
        });
        let opts = EncodeOptions {
            xml_root: Some("DangKyHoSo"),
            namespaces: Some(&ns),
        };
        let xml = String::from_utf8(encode(&tree, &opts).unwrap()).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DangKyHoSo xmlns=\"http://lis.quangnam.gov.vn/hoso\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><MaHoSo>049</MaHoSo><SoTien>1500000000</SoTien>\
             <Ok>true</Ok><Trong/><TaiLieu><TepDinhKem id=\"1\"><Ten>a&lt;b&gt;&amp;\"c\"</Ten></TepDinhKem>\
             <TepDinhKem id=\"2&#9;&#10;\"><Ten>x&#13;\ny</Ten></TepDinhKem></TaiLieu></DangKyHoSo>"
        );
        let back = decode(xml.as_bytes(), &DecodeOptions::default()).unwrap();
        assert_eq!(
            back["DangKyHoSo"]["TaiLieu"]["TepDinhKem"][1]["@id"],
            "2\t\n"
        );
        assert_eq!(
            back["DangKyHoSo"]["TaiLieu"]["TepDinhKem"][1]["Ten"],
            "x\r\ny"
        );
        assert_eq!(
            back["DangKyHoSo"]["TaiLieu"]["TepDinhKem"][0]["Ten"],
            "a<b>&\"c\""
        );
    }

    #[test]
    fn encode_errors_name_the_tree_path() {
        let opts = EncodeOptions {
            xml_root: Some("R"),
            namespaces: None,
        };
        let e = encode(&json!({"a": {"bad name": "x"}}), &opts).unwrap_err();
        assert_eq!(e.position, "/a/bad name");
        let e = encode(&json!({"a": [[1]]}), &opts).unwrap_err();
        assert_eq!(e.position, "/a/0");
        let e = encode(&json!({"a": "\u{1}"}), &opts).unwrap_err();
        assert!(e.message.contains("U+0001"), "{e}");
        let e = encode(&json!({"a": 1, "b": 2}), &EncodeOptions::default()).unwrap_err();
        assert!(e.message.contains("exactly one key"), "{e}");
    }

    #[test]
    fn nfc_and_nfd_text_are_byte_exact() {
        let nfc = "Nguy\u{1ec5}n V\u{103}n A";
        let nfd = "Nguye\u{302}\u{303}n Va\u{306}n A";
        for s in [nfc, nfd] {
            let tree = roundtrip(&format!("<R><Ten>{s}</Ten><X a=\"{s}\"/></R>"), None);
            assert_eq!(tree["R"]["Ten"].as_str().unwrap().as_bytes(), s.as_bytes());
            assert_eq!(
                tree["R"]["X"]["@a"].as_str().unwrap().as_bytes(),
                s.as_bytes()
            );
        }
    }

    #[test]
    fn bad_input_errors_have_positions() {
        let e = dec_err("<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>");
        assert_eq!(e.position, "line 1, column 1");
        assert!(e.message.contains("DOCTYPE"), "{e}");

        let e = dec_err("<a>\n  <b>x</c>\n</a>");
        assert_eq!(e.position, "line 2, column 7");
        assert!(e.message.contains("malformed XML"), "{e}");

        let e = dec_err("<a>\n  <b>x</b>\n");
        assert!(
            e.message
                .contains("<a> opened at line 1, column 1 is never closed"),
            "{e}"
        );

        let e = dec_err("<a>&nbsp;</a>");
        assert!(e.message.contains("unknown entity &nbsp;"), "{e}");
        assert_eq!(e.position, "line 1, column 4");

        let e = dec_err("<a/><b/>");
        assert!(e.message.contains("second document element"), "{e}");

        let e = dec_err("<a/>junk");
        assert!(e.message.contains("text outside"), "{e}");

        let e = dec_err("");
        assert!(e.message.contains("no document element"), "{e}");

        let e = dec_err("<a>\u{1}</a>");
        assert_eq!(e.position, "line 1, column 4");

        let e = dec_err("<a>&#1;</a>");
        assert!(e.message.contains("U+0001"), "{e}");

        let e = dec_err("<?xml version=\"1.0\" encoding=\"windows-1258\"?><a/>");
        assert!(e.message.contains("UTF-8 only"), "{e}");

        let e = decode(b"<a>\xC0</a>", &DecodeOptions::default()).unwrap_err();
        assert_eq!(e.position, "byte 3 (line 1, column 4)");

        let many = format!("<r>{}</r>", "<a/>".repeat(limits::MAX_NODES));
        let e = decode(many.as_bytes(), &DecodeOptions::default()).unwrap_err();
        assert!(e.message.contains("MAX_NODES"), "{e}");
        let deep = "<a>".repeat(limits::MAX_DEPTH + 1);
        let e = dec_err(&deep);
        assert!(e.message.contains("MAX_DEPTH"), "{e}");
        let ok = "<a>".repeat(limits::MAX_DEPTH) + &"</a>".repeat(limits::MAX_DEPTH);
        dec(&ok);

        let big = vec![b' '; limits::MAX_BODY_BYTES + 1];
        assert!(decode(&big, &DecodeOptions::default())
            .unwrap_err()
            .message
            .contains("limit"));
    }
}
