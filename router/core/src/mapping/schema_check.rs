//! Load-time checks of a mapping against its source and target JSON Schemas.
//!
//! A mapping that reads `NgayTiepNhan` when the portal sends `NgayNhan` would
//! otherwise only fail on the first real dossier, in production, at night. Since
//! every message type has a schema, we can catch most such mistakes when the
//! mapping loads:
//!
//! * every source path a rule reads must exist in the source schema
//!   (following `properties`, `items`, `$ref`, `allOf`/`anyOf`/`oneOf`);
//! * every target path must exist in the target schema, and every field the
//!   target schema requires must be produced by some rule;
//! * plain type conflicts: a rule producing a number into a `string` field, text
//!   into a number, an object into a string; a `const`, `default` or lookup value
//!   that the target field's schema (enum, pattern, length...) rejects.
//!
//! It also settles `decimal` ops without an explicit `as:`: they write a JSON
//! string when the target field is a string, a number otherwise.
//!
//! The checks are conservative: where a schema allows anything (`true`, `{}`,
//! `additionalProperties` with a schema) the path is accepted.

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{CompiledMapping, Part, Rule, Src};
use super::ops::{DecimalOut, Op};
use super::path::{Path, Seg};
use super::yaml::Node;
use super::Schemas;
use crate::{Diagnostic, Diagnostics};

const MAX_EXPAND: usize = 32;

/// The schemas reachable at a path (a union, because of `anyOf`/`oneOf`).
#[derive(Debug, Clone)]
enum At<'s> {
    /// The schema does not constrain this place.
    Any,
    Schemas(Vec<&'s Value>),
}

struct Doc<'s> {
    root: &'s Value,
}

impl<'s> Doc<'s> {
    /// Follow `$ref` (local `#/...` pointers only) and expand `allOf`/`anyOf`/`oneOf`.
    fn expand(&self, s: &'s Value, out: &mut Vec<&'s Value>, depth: usize) -> bool {
        if depth > MAX_EXPAND {
            return false;
        }
        let Value::Object(m) = s else {
            // `true`/`false` schemas declare no fields
            return true;
        };
        if let Some(Value::String(r)) = m.get("$ref") {
            match r.strip_prefix('#').and_then(|p| self.root.pointer(p)) {
                Some(t) => {
                    if !self.expand(t, out, depth + 1) {
                        return false;
                    }
                }
                None => return false,
            }
        }
        out.push(s);
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(list)) = m.get(key) {
                for sub in list {
                    if !self.expand(sub, out, depth + 1) {
                        return false;
                    }
                }
            }
        }
        true
    }

    fn expanded(&self, s: &'s Value) -> Option<Vec<&'s Value>> {
        if matches!(s, Value::Bool(true)) || s.as_object().is_some_and(|m| m.is_empty()) {
            return None;
        }
        let mut out = Vec::new();
        self.expand(s, &mut out, 0).then_some(out)
    }

    /// Walk `segs` from `start`. Err is a message saying where the path leaves the schema.
    fn walk(&self, start: At<'s>, segs: &[Seg], what: &str, path: &Path) -> Result<At<'s>, String> {
        let mut cur = start;
        for (i, seg) in segs.iter().enumerate() {
            let At::Schemas(list) = cur else {
                return Ok(At::Any);
            };
            let mut next = Vec::new();
            let mut any = false;
            let mut known: Vec<&str> = Vec::new();
            for s in &list {
                let Some(exp) = self.expanded(s) else {
                    any = true;
                    continue;
                };
                for e in exp {
                    let Value::Object(m) = e else { continue };
                    match seg {
                        Seg::Key(k) => {
                            if let Some(Value::Object(props)) = m.get("properties") {
                                known.extend(props.keys().map(String::as_str));
                                if let Some(p) = props.get(k) {
                                    next.push(p);
                                    continue;
                                }
                            }
                            if m.contains_key("patternProperties") {
                                any = true;
                            }
                            match m.get("additionalProperties") {
                                Some(Value::Object(a)) if !a.is_empty() => {
                                    next.push(m.get("additionalProperties").expect("present"))
                                }
                                Some(Value::Object(_)) | Some(Value::Bool(true))
                                    if !m.contains_key("properties") =>
                                {
                                    any = true
                                }
                                _ => {}
                            }
                        }
                        Seg::Index(_) | Seg::Append => {
                            if let Some(items) = m.get("items") {
                                next.push(items);
                            } else if m.get("type").and_then(Value::as_str) == Some("object")
                                || m.contains_key("properties")
                            {
                                // XML: a single element counts as a list of one
                                next.push(e);
                            }
                        }
                    }
                }
            }
            if any {
                return Ok(At::Any);
            }
            if next.is_empty() {
                let upto: Vec<String> = segs[..=i].iter().map(seg_text).collect();
                known.sort_unstable();
                known.dedup();
                let hint = match seg {
                    Seg::Key(k) => match known.iter().find(|c| c.eq_ignore_ascii_case(k)) {
                        Some(c) => format!("; did you mean '{c}'?"),
                        None if known.is_empty() => String::new(),
                        None => format!("; known fields here: {}", known.join(", ")),
                    },
                    _ => " (not a list)".to_owned(),
                };
                return Err(format!(
                    "{what} path '{path}': '{}' is not in the {what} schema{hint}",
                    upto.join(".").replace(".[", "[")
                ));
            }
            cur = At::Schemas(next);
        }
        Ok(cur)
    }

    /// The `type` names allowed at a place (empty: unconstrained).
    fn types(&self, at: &At<'s>) -> Vec<String> {
        let At::Schemas(list) = at else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in list {
            let Some(exp) = self.expanded(s) else {
                return Vec::new();
            };
            let mut declared = false;
            for e in exp {
                match e.get("type") {
                    Some(Value::String(t)) => {
                        declared = true;
                        out.push(t.clone());
                    }
                    Some(Value::Array(ts)) => {
                        declared = true;
                        out.extend(ts.iter().filter_map(Value::as_str).map(str::to_owned));
                    }
                    _ => {}
                }
            }
            if !declared {
                return Vec::new();
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// A standalone validator for the single schema at a place (None when it
    /// uses `$ref` or is a union: those are checked by the full validation in tests).
    fn validator(&self, at: &At<'s>) -> Option<jsonschema::Validator> {
        let At::Schemas(list) = at else { return None };
        let [one] = list.as_slice() else { return None };
        if one.to_string().contains("\"$ref\"") {
            return None;
        }
        jsonschema::validator_for(one).ok()
    }
}

fn seg_text(s: &Seg) -> String {
    match s {
        Seg::Key(k) => k.clone(),
        Seg::Index(i) => format!("[{i}]"),
        Seg::Append => "[]".into(),
    }
}

/// What a rule produces, as far as we can tell at load time.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Unknown,
    String,
    Number,
    Integer,
    Bool,
    Object,
    Array,
}

fn ty_of(v: &Value) -> Ty {
    match v {
        Value::String(_) => Ty::String,
        Value::Number(n) if n.is_i64() || n.is_u64() => Ty::Integer,
        Value::Number(_) => Ty::Number,
        Value::Bool(_) => Ty::Bool,
        Value::Object(_) => Ty::Object,
        Value::Array(_) => Ty::Array,
        Value::Null => Ty::Unknown,
    }
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Unknown => "a value",
        Ty::String => "text",
        Ty::Number => "a number",
        Ty::Integer => "an integer",
        Ty::Bool => "a boolean",
        Ty::Object => "an object",
        Ty::Array => "a list",
    }
}

fn compatible(t: Ty, allowed: &[String]) -> bool {
    if allowed.is_empty() || t == Ty::Unknown {
        return true;
    }
    let has = |n: &str| allowed.iter().any(|a| a == n);
    match t {
        Ty::String => has("string"),
        Ty::Number => has("number") || has("integer"),
        Ty::Integer => has("integer") || has("number"),
        Ty::Bool => has("boolean"),
        Ty::Object => has("object"),
        Ty::Array => has("array"),
        Ty::Unknown => true,
    }
}

/// Target fields produced by the rules, as a tree (lists carry their item tree).
#[derive(Debug, Default)]
struct Produced {
    fields: BTreeMap<String, Produced>,
}

impl Produced {
    fn add(&mut self, segs: &[Seg]) -> &mut Produced {
        let mut cur = self;
        for s in segs {
            if let Seg::Key(k) = s {
                cur = cur.fields.entry(k.clone()).or_default();
            }
        }
        cur
    }
}

/// What the checks found, with positions in the mapping file.
struct Findings {
    file: String,
    diags: Diagnostics,
}

impl Findings {
    fn err_at(&mut self, line: usize, column: usize, context: &str, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::at(&self.file, line, column, context, message));
    }
}

/// Checks a compiled mapping against its source and target schemas; returns
/// every problem, positioned in `file`.
pub(crate) fn check(
    file: &str,
    mapping: &mut CompiledMapping,
    root: &Node,
    schemas: &dyn Schemas,
) -> Diagnostics {
    let mut found = Findings {
        file: file.to_owned(),
        diags: Diagnostics::default(),
    };
    check_sides(&mut found, mapping, root, schemas);
    found.diags
}

fn check_sides(
    cx: &mut Findings,
    mapping: &mut CompiledMapping,
    root: &Node,
    schemas: &dyn Schemas,
) {
    let src_id = mapping.source.schema.clone();
    let tgt_id = mapping.target.schema.clone();
    let src_schema = schemas.raw(&src_id);
    let tgt_schema = schemas.raw(&tgt_id);
    let pos = |side: &str| {
        root.get(side).map_or((root.line, root.column), |n| {
            n.get("schema")
                .or(n.get("message_type"))
                .map_or((n.line, n.column), |s| (s.line, s.column))
        })
    };
    if src_schema.is_none() {
        let (l, c) = pos("source");
        cx.err_at(
            l,
            c,
            "source",
            format!("schema '{src_id}' not found (expected schemas/{src_id}.schema.json)"),
        );
    }
    if tgt_schema.is_none() {
        let (l, c) = pos("target");
        cx.err_at(
            l,
            c,
            "target",
            format!("schema '{tgt_id}' not found (expected schemas/{tgt_id}.schema.json)"),
        );
    }
    if mapping.target.format == "xml" && mapping.target.xml.is_none() {
        let has_schema_xml = tgt_schema
            .and_then(|s| s.pointer("/x-lienthong/xml/root"))
            .is_some();
        if !has_schema_xml {
            let (l, c) = pos("target");
            cx.err_at(l, c, "target", "an xml target needs xml: {root: ..., namespaces: {...}} (or x-lienthong.xml in its schema)");
        }
    }
    let src = src_schema.map(|s| (Doc { root: s }, s));
    let tgt = tgt_schema.map(|s| (Doc { root: s }, s));
    let mut produced = Produced::default();
    let src_at = src.as_ref().map(|(_, s)| At::Schemas(vec![*s]));
    let tgt_at = tgt.as_ref().map(|(_, s)| At::Schemas(vec![*s]));
    check_rules(
        cx,
        &mut mapping.rules,
        src.as_ref().map(|(d, _)| d),
        src_at.clone(),
        src_at,
        tgt.as_ref().map(|(d, _)| d),
        tgt_at,
        &mut produced,
    );
    if let Some((doc, s)) = &tgt {
        let (l, c) = root
            .get("rules")
            .map_or((root.line, root.column), |n| (n.line, n.column));
        let mut missing = Vec::new();
        required_coverage(doc, s, &produced, "", &mut missing, 0);
        for m in missing {
            cx.err_at(
                l,
                c,
                "rules",
                format!("target schema '{tgt_id}' requires '{m}', but no rule produces it"),
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_rules<'s>(
    cx: &mut Findings,
    rules: &mut [Rule],
    src: Option<&Doc<'s>>,
    src_root: Option<At<'s>>,
    src_ctx: Option<At<'s>>,
    tgt: Option<&Doc<'s>>,
    tgt_ctx: Option<At<'s>>,
    produced: &mut Produced,
) {
    for rule in rules.iter_mut() {
        let label = rule.label.clone();
        let (vl, vc) = rule.value_pos;
        let (tl, tc) = rule.target_pos;
        // Source side.
        let read = |cx: &mut Findings, p: &Path| -> Option<At<'s>> {
            let (doc, start) = (
                src?,
                if p.root {
                    src_root.clone()?
                } else {
                    src_ctx.clone()?
                },
            );
            match doc.walk(start, &p.segs, "source", p) {
                Ok(at) => Some(at),
                Err(e) => {
                    cx.err_at(vl, vc, &label, e);
                    None
                }
            }
        };
        let mut src_ty = Ty::Unknown;
        match &rule.value {
            Src::Path(p) => {
                if let (Some(at), Some(doc)) = (read(cx, p), src) {
                    let ts = doc.types(&at);
                    if ts.len() == 1 {
                        src_ty = match ts[0].as_str() {
                            "string" => Ty::String,
                            "number" => Ty::Number,
                            "integer" => Ty::Integer,
                            "boolean" => Ty::Bool,
                            "object" => Ty::Object,
                            "array" => Ty::Array,
                            _ => Ty::Unknown,
                        };
                    }
                }
            }
            Src::Template(parts) => {
                for part in parts {
                    if let Part::Field(p) = part {
                        read(cx, p);
                    }
                }
            }
            Src::Concat { paths, .. } => {
                for p in paths {
                    read(cx, p);
                }
            }
            _ => {}
        }
        // Target side.
        let target_at = match (tgt, tgt_ctx.clone()) {
            (Some(doc), Some(start)) => {
                let mut segs = rule.target.field.segs.clone();
                if let Some(l) = &rule.target.list {
                    segs.push(l.clone());
                }
                match doc.walk(start, &segs, "target", &rule.target.field) {
                    Ok(at) => Some(at),
                    Err(e) => {
                        cx.err_at(tl, tc, &label, e);
                        None
                    }
                }
            }
            _ => None,
        };
        let node = produced.add(&rule.target.field.segs);
        let target_types = match (tgt, &target_at) {
            (Some(doc), Some(at)) => doc.types(at),
            _ => Vec::new(),
        };

        // for_each: recurse with the item schemas.
        if let Src::ForEach {
            path,
            rules: nested,
        } = &mut rule.value
        {
            let item_src = match (src, read(cx, path)) {
                (Some(doc), Some(at)) => doc.walk(at, &[Seg::Index(0)], "source", path).ok(),
                _ => None,
            };
            let item_tgt = match (tgt, &target_at) {
                (Some(doc), Some(at)) if rule.target.list.is_none() => doc
                    .walk(at.clone(), &[Seg::Index(0)], "target", &rule.target.field)
                    .ok(),
                (Some(_), Some(at)) => Some(at.clone()),
                _ => None,
            };
            if !target_types.is_empty()
                && rule.target.list.is_none()
                && !compatible(Ty::Array, &target_types)
            {
                cx.err_at(
                    tl,
                    tc,
                    &label,
                    format!(
                        "for_each produces a list, but the target field is {}",
                        target_types.join("/")
                    ),
                );
            }
            check_rules(
                cx,
                nested,
                src,
                src_root.clone(),
                item_src.or(Some(At::Any)),
                tgt,
                item_tgt.or(Some(At::Any)),
                node,
            );
            continue;
        }

        // What the rule produces.
        let last_op = rule.pipe.last_mut();
        let produced_ty = match last_op {
            Some(Op::Decimal(d)) => {
                if d.out == DecimalOut::Auto {
                    let wants_string = target_types.iter().any(|t| t == "string")
                        && !target_types.iter().any(|t| t == "number" || t == "integer");
                    d.out = if wants_string {
                        DecimalOut::String
                    } else {
                        DecimalOut::Number
                    };
                }
                if d.out == DecimalOut::String {
                    Ty::String
                } else if d.scale == Some(0) {
                    Ty::Integer
                } else {
                    Ty::Number
                }
            }
            Some(Op::Integer) => Ty::Integer,
            Some(Op::Lookup(t)) => {
                let mut tys = t.map.values().chain(t.fallback.iter()).map(ty_of);
                let first = tys.next().unwrap_or(Ty::Unknown);
                if tys.all(|t| t == first) {
                    first
                } else {
                    Ty::Unknown
                }
            }
            Some(Op::Default(_)) => Ty::Unknown,
            Some(_) => Ty::String,
            None => match &rule.value {
                Src::Const(v) => ty_of(v),
                Src::Template(_) | Src::Concat { .. } => Ty::String,
                Src::Path(_) => src_ty,
                _ => Ty::Unknown,
            },
        };
        if !compatible(produced_ty, &target_types) {
            let what = match &rule.value {
                Src::Path(p) if rule.pipe.is_empty() => {
                    format!("source '{p}' is {}", ty_name(produced_ty))
                }
                _ => format!("the rule produces {}", ty_name(produced_ty)),
            };
            let fix = match (produced_ty, target_types.first().map(String::as_str)) {
                (Ty::Number | Ty::Integer, Some("string")) => {
                    "; add `string` (or decimal with as: string) to the pipe"
                }
                (Ty::String, Some("number" | "integer")) => {
                    "; add `integer` or `decimal` to the pipe"
                }
                _ => "",
            };
            cx.err_at(
                vl,
                vc,
                &label,
                format!(
                    "{what}, but target field '{}' must be {}{fix}",
                    rule.target.field,
                    target_types.join(" or ")
                ),
            );
        }
        // Constant values must satisfy the target field's own schema.
        if let (Some(doc), Some(at)) = (tgt, &target_at) {
            if let Some(v) = doc.validator(at) {
                let mut consts: Vec<(&str, &Value)> = Vec::new();
                if let Src::Const(c) = &rule.value {
                    if rule.pipe.is_empty() {
                        consts.push(("const", c));
                    }
                }
                if let Some(d) = &rule.default {
                    consts.push(("default", d));
                }
                if let Some(Op::Lookup(t)) = rule.pipe.last() {
                    for (code, val) in &t.map {
                        if !v.is_valid(val) {
                            cx.err_at(vl, vc, &label, format!(
                                "lookup table '{}' maps '{code}' to {val}, which target field '{}' does not accept ({})",
                                t.name, rule.target.field, first_error(&v, val)
                            ));
                        }
                    }
                    if let Some(fb) = &t.fallback {
                        consts.push(("lookup fallback", fb));
                    }
                }
                for (what, c) in consts {
                    if !v.is_valid(c) {
                        cx.err_at(
                            vl,
                            vc,
                            &label,
                            format!(
                                "{what} {c} is not accepted by target field '{}': {}",
                                rule.target.field,
                                first_error(&v, c)
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn first_error(v: &jsonschema::Validator, instance: &Value) -> String {
    v.iter_errors(instance)
        .next()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// Collect required target fields no rule produces.
fn required_coverage(
    doc: &Doc,
    s: &Value,
    produced: &Produced,
    prefix: &str,
    missing: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_EXPAND {
        return;
    }
    // Only allOf (and $ref) parts are unconditional; anyOf/oneOf are alternatives.
    let mut parts = vec![s];
    let mut i = 0;
    while i < parts.len() && parts.len() < 64 {
        let p = parts[i];
        if let Some(Value::String(r)) = p.get("$ref") {
            if let Some(t) = r.strip_prefix('#').and_then(|ptr| doc.root.pointer(ptr)) {
                parts.push(t);
            }
        }
        if let Some(Value::Array(all)) = p.get("allOf") {
            parts.extend(all.iter());
        }
        i += 1;
    }
    for p in &parts {
        if let Some(Value::Array(req)) = p.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !produced.fields.contains_key(r) {
                    missing.push(format!("{prefix}{r}"));
                }
            }
        }
        if let Some(Value::Object(props)) = p.get("properties") {
            for (k, sub) in props {
                if let Some(child) = produced.fields.get(k) {
                    if child.fields.is_empty() {
                        continue;
                    }
                    let sub = match sub.get("items") {
                        Some(items) => items,
                        None => sub,
                    };
                    required_coverage(
                        doc,
                        sub,
                        child,
                        &format!("{prefix}{k}."),
                        missing,
                        depth + 1,
                    );
                }
            }
        }
        if let Some(items) = p.get("items") {
            required_coverage(doc, items, produced, prefix, missing, depth + 1);
        }
    }
}
