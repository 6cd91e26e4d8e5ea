//! Dotted paths into the tree, split once at load time.
//!
//! A mapping reads and writes fields by paths such as `ThuaDat.SoThua`,
//! `DanhSachLePhi[0].Gia`, `TaiLieu.@id` / `@id` (XML attribute, per the XML
//! convention in `codec::xml`), `#text`, and `$.MaHoSo` (from the message root
//! while inside a `for_each`). Target paths may end in `[]` to append to a list.
//!
//! Paths are parsed into [`Path`] when the mapping is compiled, so applying a
//! mapping never re-parses text: reading is a walk over pre-split segments.

use std::fmt;

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// An object key (includes `@attr` and `#text`).
    Key(String),
    /// A list index.
    Index(usize),
    /// `[]`: append (target paths only).
    Append,
}

/// A parsed path. `root` is true for `$.x` paths (read from the message root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub root: bool,
    pub segs: Vec<Seg>,
    text: String,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// Parse a path. `allow_append` is true for target paths.
    pub fn parse(text: &str, allow_append: bool) -> Result<Path, String> {
        let mut root = false;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("empty path".into());
        }
        if rest == "$" {
            return Ok(Path {
                root: true,
                segs: Vec::new(),
                text: text.to_owned(),
            });
        }
        if let Some(r) = rest.strip_prefix("$.") {
            root = true;
            rest = r;
        }
        let mut segs = Vec::new();
        for part in rest.split('.') {
            if part.is_empty() {
                return Err(format!(
                    "path '{text}' has an empty segment (two dots, or a leading/trailing dot)"
                ));
            }
            let (name, mut brackets) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                if name.contains(']') || name.contains(char::is_whitespace) {
                    return Err(format!("path '{text}': bad field name '{name}'"));
                }
                segs.push(Seg::Key(name.to_owned()));
            } else if segs.is_empty() && brackets.is_empty() {
                return Err(format!("path '{text}' has an empty segment"));
            }
            while !brackets.is_empty() {
                let Some(close) = brackets.find(']') else {
                    return Err(format!("path '{text}': '[' without ']'"));
                };
                let inner = &brackets[1..close];
                if inner.is_empty() {
                    if !allow_append {
                        return Err(format!(
                            "path '{text}': '[]' (append) is only allowed in target paths; use [0] or for_each"
                        ));
                    }
                    segs.push(Seg::Append);
                } else {
                    let i: usize = inner.parse().map_err(|_| {
                        format!("path '{text}': '[{inner}]' is not a list index (use a number such as [0])")
                    })?;
                    segs.push(Seg::Index(i));
                }
                brackets = &brackets[close + 1..];
                if !brackets.is_empty() && !brackets.starts_with('[') {
                    return Err(format!(
                        "path '{text}': unexpected '{brackets}' after ']' (missing a dot?)"
                    ));
                }
            }
        }
        if let Some(pos) = segs.iter().position(|s| *s == Seg::Append) {
            if pos + 1 != segs.len() {
                return Err(format!(
                    "path '{text}': '[]' (append) must be the last step; use for_each to build lists of objects"
                ));
            }
        }
        Ok(Path {
            root,
            segs,
            text: text.to_owned(),
        })
    }

    /// The path's text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Read the value at this path from `ctx` (or `root` for `$.` paths).
    /// Missing fields, wrong types along the way and out-of-range indexes give `None`.
    pub fn get<'a>(&self, ctx: &'a Value, root: &'a Value) -> Option<&'a Value> {
        let mut cur = if self.root { root } else { ctx };
        for seg in &self.segs {
            cur = match (seg, cur) {
                (Seg::Key(k), Value::Object(m)) => m.get(k)?,
                (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
                // A single element where a list was expected: XML gives one
                // element when there is one; treat it as a list of one.
                (Seg::Index(0), v @ Value::Object(_)) => v,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Write `value` at this path in `out`, creating objects on the way.
    pub fn set(&self, out: &mut Map<String, Value>, value: Value) -> Result<(), String> {
        let Some((last, init)) = self.segs.split_last() else {
            return Err("cannot write to the root of the output".into());
        };
        let mut cur: &mut Value = match init.first() {
            None => return set_last(out, last, value, &self.text),
            Some(Seg::Key(k)) => out
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Some(_) => {
                return Err(format!(
                    "target path '{}' must start with a field name",
                    self.text
                ))
            }
        };
        for seg in &init[1..] {
            cur = match seg {
                Seg::Key(k) => match cur {
                    Value::Object(m) => m.entry(k.clone()).or_insert_with(|| Value::Object(Map::new())),
                    other => {
                        return Err(format!(
                            "target path '{}': cannot write field '{k}' into a {} already produced by another rule",
                            self.text,
                            json_type(other)
                        ))
                    }
                },
                Seg::Index(i) => match cur {
                    Value::Array(a) => {
                        while a.len() <= *i {
                            a.push(Value::Object(Map::new()));
                        }
                        &mut a[*i]
                    }
                    Value::Object(m) if m.is_empty() => {
                        *cur = Value::Array(vec![Value::Object(Map::new()); i + 1]);
                        match cur {
                            Value::Array(a) => &mut a[*i],
                            _ => unreachable!("just assigned an array"),
                        }
                    }
                    other => {
                        return Err(format!(
                            "target path '{}': [{i}] into a {}",
                            self.text,
                            json_type(other)
                        ))
                    }
                },
                Seg::Append => unreachable!("append is only allowed last"),
            };
        }
        match cur {
            Value::Object(m) => set_last(m, last, value, &self.text),
            other => Err(format!(
                "target path '{}': cannot write into a {} already produced by another rule",
                self.text,
                json_type(other)
            )),
        }
    }
}

/// Set the last step. A target ending in `[n]`/`[]` has a key before it, so
/// `last` is applied to the parent object's field.
fn set_last(
    m: &mut Map<String, Value>,
    last: &Seg,
    value: Value,
    text: &str,
) -> Result<(), String> {
    match last {
        Seg::Key(k) => {
            m.insert(k.clone(), value);
            Ok(())
        }
        _ => Err(format!(
            "target path '{text}': internal: list step without a field name"
        )),
    }
}

/// The JSON type name of a value, for messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// A target path split so that list steps (`a.b[]`, `a.b[2]`) are handled by the writer.
#[derive(Debug, Clone)]
pub struct Target {
    /// The path to the field (without a trailing `[]`/`[n]`).
    pub field: Path,
    /// Trailing list step, if any.
    pub list: Option<Seg>,
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        let mut field = Path::parse(text, true)?;
        if field.root {
            return Err(format!(
                "target path '{text}' cannot start with '$.' (that is for source paths)"
            ));
        }
        let list = match field.segs.last() {
            Some(Seg::Append) | Some(Seg::Index(_)) => field.segs.pop(),
            _ => None,
        };
        if field.segs.is_empty() {
            return Err(format!("target path '{text}' needs a field name"));
        }
        if field.segs.iter().any(|s| matches!(s, Seg::Append)) {
            return Err(format!("target path '{text}': '[]' must be last"));
        }
        Ok(Target { field, list })
    }

    /// Write a value. `[]` appends (a list value is appended item by item when
    /// `spread` is set, as for `for_each`); `[n]` sets item n.
    pub fn write(
        &self,
        out: &mut Map<String, Value>,
        value: Value,
        spread: bool,
    ) -> Result<(), String> {
        match &self.list {
            None => self.field.set(out, value),
            Some(seg) => {
                let slot = self.slot(out)?;
                if slot.is_null() || matches!(slot, Value::Object(m) if m.is_empty()) {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(list) = slot else {
                    return Err(format!(
                        "target path '{}': field already holds a {}, not a list",
                        self.field,
                        json_type(slot)
                    ));
                };
                match (seg, value) {
                    (Seg::Append, Value::Array(items)) if spread => list.extend(items),
                    (Seg::Append, v) => list.push(v),
                    (Seg::Index(i), v) => {
                        while list.len() <= *i {
                            list.push(Value::Null);
                        }
                        list[*i] = v;
                    }
                    (Seg::Key(_), _) => unreachable!("list step is never a key"),
                }
                Ok(())
            }
        }
    }

    /// The slot for the field, created as null when absent.
    fn slot<'a>(&self, out: &'a mut Map<String, Value>) -> Result<&'a mut Value, String> {
        let mut cur: Option<&'a mut Value> = None;
        let mut map: &'a mut Map<String, Value> = out;
        let n = self.field.segs.len();
        for (i, seg) in self.field.segs.iter().enumerate() {
            let Seg::Key(k) = seg else {
                return Err(format!(
                    "target path '{}': only field names may come before the final list step",
                    self.field
                ));
            };
            let last = i + 1 == n;
            let v = map.entry(k.clone()).or_insert_with(|| {
                if last {
                    Value::Null
                } else {
                    Value::Object(Map::new())
                }
            });
            if last {
                cur = Some(v);
                break;
            }
            map = match v {
                Value::Object(m) => m,
                other => {
                    return Err(format!(
                        "target path '{}': cannot write field into a {}",
                        self.field,
                        json_type(other)
                    ))
                }
            };
        }
        cur.ok_or_else(|| format!("target path '{}' is empty", self.field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_get() {
        let v = json!({"a": {"b": [{"c": 1}, {"c": 2}]}, "@id": "x", "#text": "t"});
        let p = Path::parse("a.b[1].c", false).unwrap();
        assert_eq!(p.get(&v, &v), Some(&json!(2)));
        assert_eq!(
            Path::parse("@id", false).unwrap().get(&v, &v),
            Some(&json!("x"))
        );
        assert_eq!(
            Path::parse("#text", false).unwrap().get(&v, &v),
            Some(&json!("t"))
        );
        let item = json!({"c": 5});
        assert_eq!(
            Path::parse("$.@id", false).unwrap().get(&item, &v),
            Some(&json!("x"))
        );
        assert_eq!(Path::parse("a.x", false).unwrap().get(&v, &v), None);
        // a single object counts as a list of one
        let one = json!({"b": {"c": 7}});
        assert_eq!(
            Path::parse("b[0].c", false).unwrap().get(&one, &one),
            Some(&json!(7))
        );
    }

    #[test]
    fn bad_paths_are_explained() {
        assert!(Path::parse("a..b", false)
            .unwrap_err()
            .contains("empty segment"));
        assert!(Path::parse("a[x]", false)
            .unwrap_err()
            .contains("not a list index"));
        assert!(Path::parse("a[]", false)
            .unwrap_err()
            .contains("only allowed in target"));
        assert!(Path::parse("a[0", false)
            .unwrap_err()
            .contains("without ']'"));
        assert!(Target::parse("a[].b").unwrap_err().contains("last"));
        assert!(Target::parse("$.a").is_err());
    }

    #[test]
    fn set_and_append() {
        let mut out = Map::new();
        Target::parse("a.b")
            .unwrap()
            .write(&mut out, json!(1), false)
            .unwrap();
        Target::parse("a.c.@id")
            .unwrap()
            .write(&mut out, json!("x"), false)
            .unwrap();
        Target::parse("l[]")
            .unwrap()
            .write(&mut out, json!(1), false)
            .unwrap();
        Target::parse("l[]")
            .unwrap()
            .write(&mut out, json!([2, 3]), true)
            .unwrap();
        Target::parse("m.n[1]")
            .unwrap()
            .write(&mut out, json!("z"), false)
            .unwrap();
        assert_eq!(
            Value::Object(out.clone()),
            json!({"a": {"b": 1, "c": {"@id": "x"}}, "l": [1, 2, 3], "m": {"n": [null, "z"]}})
        );
        let e = Target::parse("a.b.c")
            .unwrap()
            .write(&mut out, json!(1), false)
            .unwrap_err();
        assert!(e.contains("cannot write"), "{e}");
    }
}
