//! Applying a compiled mapping to one message.
//!
//! The rules run in file order; each reads from the current context (the
//! message, or the current item inside a `for_each`), runs its pipe, falls back
//! to its `default`, checks `required`, and writes at its target path. Output
//! keys keep the order the rules produce them (`preserve_order`), which is the
//! element order of an XML target.
//!
//! Semantics worth knowing (also in `mappings/README.md`):
//! * a missing field and `null` are the same: "no value". A rule with no value
//!   writes nothing; a rule never writes `null`;
//! * `required: true` fails on no value and on an empty string;
//! * on a `for_each` rule, `when` is evaluated on each item and filters the
//!   items; on every other rule it is evaluated on the current context;
//! * a `template` with any placeholder missing has no value (so its `default`
//!   or `required` applies) rather than producing half a sentence.
//!
//! Errors name the rule (`rules[3] (target: NgayNhan)`) and, inside `for_each`,
//! the item index, so an operator can find the field in the message.

use serde_json::{Map, Value};

use super::model::{CompiledMapping, Part, Rule, Src};
use super::path::json_type;
use crate::Error;

impl CompiledMapping {
    /// Map one message tree to the target tree.
    pub fn apply(&self, input: &Value) -> Result<Value, Error> {
        let mut out = Map::new();
        run_rules(&self.rules, input, input, &mut out).map_err(|message| Error::Mapping {
            mapping: format!("{} v{}", self.id, self.version),
            message,
        })?;
        Ok(Value::Object(out))
    }
}

fn run_rules(
    rules: &[Rule],
    ctx: &Value,
    root: &Value,
    out: &mut Map<String, Value>,
) -> Result<(), String> {
    for rule in rules {
        if let (Some(when), false) = (&rule.when, matches!(rule.value, Src::ForEach { .. })) {
            match when.test(ctx, root) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return Err(format!("{}: when: {e}", rule.label)),
            }
        }
        let spread = matches!(rule.value, Src::ForEach { .. });
        let value = eval(rule, ctx, root)?;
        let missing = match &value {
            None => true,
            Some(Value::String(s)) => s.is_empty() && rule.required,
            Some(_) => false,
        };
        if missing && rule.required {
            return Err(format!(
                "{}: required value is missing{}",
                rule.label,
                source_hint(&rule.value)
            ));
        }
        if let Some(v) = value {
            rule.target
                .write(out, v, spread)
                .map_err(|e| format!("{}: {e}", rule.label))?;
        }
    }
    Ok(())
}

fn source_hint(src: &Src) -> String {
    match src {
        Src::Path(p) => format!(" (source '{p}' is absent, null or empty)"),
        Src::ForEach { path, .. } => format!(" (source '{path}' is absent)"),
        Src::Template(_) => " (a template placeholder is absent)".to_owned(),
        _ => String::new(),
    }
}

/// The rule's value after pipe and default; `None` is "no value".
fn eval(rule: &Rule, ctx: &Value, root: &Value) -> Result<Option<Value>, String> {
    let raw: Option<Value> = match &rule.value {
        Src::Nothing => None,
        Src::Path(p) => p.get(ctx, root).filter(|v| !v.is_null()).cloned(),
        Src::Const(v) => Some(v.clone()),
        Src::Template(parts) => {
            template(parts, ctx, root).map_err(|e| format!("{}: {e}", rule.label))?
        }
        Src::Concat { paths, separator } => {
            let mut s = String::new();
            let mut any = false;
            for p in paths {
                match p.get(ctx, root) {
                    None | Some(Value::Null) => {}
                    Some(v) => {
                        let text = scalar_text(v).ok_or_else(|| {
                            format!(
                                "{}: concat: '{p}' is a {}, not text",
                                rule.label,
                                json_type(v)
                            )
                        })?;
                        if text.is_empty() {
                            continue;
                        }
                        if any {
                            s.push_str(separator);
                        }
                        s.push_str(text.as_ref());
                        any = true;
                    }
                }
            }
            any.then_some(Value::String(s))
        }
        Src::Expr(jq) => jq
            .first(ctx, root)
            .map_err(|e| format!("{}: {e}", rule.label))?,
        Src::ForEach { path, rules } => match path.get(ctx, root) {
            None | Some(Value::Null) => None,
            Some(v) => {
                let one;
                let items: &[Value] = match v {
                    Value::Array(a) => a,
                    other => {
                        one = [other.clone()];
                        &one
                    }
                };
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    // On a for_each, `when` filters the items.
                    if let Some(when) = &rule.when {
                        match when.test(item, root) {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(e) => return Err(format!("{} item {i}: when: {e}", rule.label)),
                        }
                    }
                    let mut m = Map::new();
                    run_rules(rules, item, root, &mut m)
                        .map_err(|e| format!("{} item {i}: {e}", rule.label))?;
                    list.push(Value::Object(m));
                }
                // No items (empty source list, or all filtered out): no value.
                (!list.is_empty()).then_some(Value::Array(list))
            }
        },
    };
    let mut v = raw.filter(|v| !v.is_null());
    for op in &rule.pipe {
        v = op.apply(v).map_err(|e| format!("{}: {e}", rule.label))?;
    }
    if v.is_none() {
        v = rule.default.clone();
    }
    Ok(v)
}

fn scalar_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(std::borrow::Cow::Borrowed(if *b {
            "true"
        } else {
            "false"
        })),
        _ => None,
    }
}

fn template(parts: &[Part], ctx: &Value, root: &Value) -> Result<Option<Value>, String> {
    let mut s = String::new();
    for part in parts {
        match part {
            Part::Lit(l) => s.push_str(l),
            Part::Field(p) => match p.get(ctx, root) {
                None | Some(Value::Null) => return Ok(None),
                Some(v) => match scalar_text(v) {
                    Some(t) => s.push_str(&t),
                    None => {
                        return Err(format!(
                            "template: '{{{p}}}' is a {}, not text",
                            json_type(v)
                        ))
                    }
                },
            },
        }
    }
    Ok(Some(Value::String(s)))
}
