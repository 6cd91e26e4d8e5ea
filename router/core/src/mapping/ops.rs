//! Pipe operations: the small, composable value transformations of a rule.
//!
//! A rule's `pipe:` is a list of ops run in order on the value the rule read.
//! Each op is compiled once (date patterns parsed, lookup tables resolved,
//! decimal rounding chosen) so that running it is a plain function call.
//!
//! A missing value (absent field or `null`) flows through every op untouched,
//! except `default`, which supplies one. Ops that need text (`trim`, `upper`,
//! `nfc`, ...) accept strings and turn numbers into their exact text; they
//! refuse objects and lists with an error naming the op.
//!
//! Money is never a float: `decimal` reads the number's exact text (the
//! workspace enables serde_json's `arbitrary_precision`) into `rust_decimal`,
//! rounds with the chosen strategy, and writes exactly `scale` fraction digits.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::date::DateOp;
use super::path::json_type;

/// A lookup table: code → value, with an optional fallback for unknown codes.
#[derive(Debug, Clone)]
pub struct LookupTable {
    pub name: String,
    /// Where it was defined (`mappings/lookups/x.yaml` or the mapping file).
    pub origin: String,
    pub map: HashMap<String, Value>,
    pub fallback: Option<Value>,
}

/// How a `decimal` op writes its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalOut {
    Number,
    String,
    /// Decided at load time from the target schema (string if the target field
    /// is a string, number otherwise).
    Auto,
}

#[derive(Debug, Clone)]
pub struct DecimalOp {
    pub scale: Option<u32>,
    pub rounding: RoundingStrategy,
    pub out: DecimalOut,
}

/// One compiled pipe op.
#[derive(Debug, Clone)]
pub enum Op {
    Trim,
    Upper,
    Lower,
    Nfc,
    Nfd,
    ToString,
    Integer,
    Decimal(DecimalOp),
    Date(DateOp),
    Lookup(Arc<LookupTable>),
    Replace { from: String, to: String },
    PadLeft { width: usize, ch: char },
    Default(Value),
}

impl Op {
    /// The op's name as written in a mapping (for messages).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Trim => "trim",
            Op::Upper => "upper",
            Op::Lower => "lower",
            Op::Nfc => "nfc",
            Op::Nfd => "nfd",
            Op::ToString => "string",
            Op::Integer => "integer",
            Op::Decimal(_) => "decimal",
            Op::Date(_) => "date",
            Op::Lookup(_) => "lookup",
            Op::Replace { .. } => "replace",
            Op::PadLeft { .. } => "pad_left",
            Op::Default(_) => "default",
        }
    }

    /// Apply to a value. `None` is a missing value.
    pub fn apply(&self, v: Option<Value>) -> Result<Option<Value>, String> {
        let v = match (self, v) {
            (Op::Default(d), None) => return Ok(Some(d.clone())),
            (_, None) => return Ok(None),
            (_, Some(v)) => v,
        };
        let out = match self {
            Op::Trim => map_text(self, v, |s| {
                let t = s.trim();
                if t.len() == s.len() {
                    s
                } else {
                    t.to_owned()
                }
            })?,
            Op::Upper => map_text(self, v, |s| s.to_uppercase())?,
            Op::Lower => map_text(self, v, |s| s.to_lowercase())?,
            Op::Nfc => map_text(self, v, |s| {
                if unicode_normalization::is_nfc_quick(s.chars())
                    == unicode_normalization::IsNormalized::Yes
                {
                    s
                } else {
                    s.nfc().collect()
                }
            })?,
            Op::Nfd => map_text(self, v, |s| s.nfd().collect())?,
            Op::ToString => Value::String(text_of(self, &v)?),
            Op::Integer => integer(&v)?,
            Op::Decimal(d) => decimal(d, &v)?,
            Op::Date(d) => Value::String(match &v {
                Value::String(s) => d.apply(s)?,
                other => d.apply(&text_of(self, other)?)?,
            }),
            Op::Lookup(t) => {
                // Borrow the code when it is already text (the common case): no allocation.
                let owned;
                let code: &str = match &v {
                    Value::String(s) => s,
                    other => {
                        owned = text_of(self, other)?;
                        &owned
                    }
                };
                match t.map.get(code).or(t.fallback.as_ref()) {
                    Some(found) => found.clone(),
                    None => {
                        return Err(format!(
                            "lookup table '{}' ({}) has no entry for code '{code}' and no fallback; add the code to the table or give it a fallback",
                            t.name, t.origin
                        ))
                    }
                }
            }
            Op::Replace { from, to } => map_text(self, v, |s| s.replace(from.as_str(), to))?,
            Op::PadLeft { width, ch } => map_text(self, v, |s| {
                let n = s.chars().count();
                if n >= *width {
                    s
                } else {
                    let mut p: String = std::iter::repeat_n(*ch, width - n).collect();
                    p.push_str(&s);
                    p
                }
            })?,
            Op::Default(_) => v,
        };
        Ok(if out.is_null() { None } else { Some(out) })
    }
}

/// Text of a scalar: strings as they are, numbers as their exact text, booleans as `true`/`false`.
fn text_of(op: &Op, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "op '{}' needs text, got a {}",
            op.name(),
            json_type(other)
        )),
    }
}

fn map_text(op: &Op, v: Value, f: impl FnOnce(String) -> String) -> Result<Value, String> {
    match v {
        Value::String(s) => Ok(Value::String(f(s))),
        other => Ok(Value::String(f(text_of(op, &other)?))),
    }
}

fn parse_decimal(what: &str, v: &Value) -> Result<Decimal, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        other => {
            return Err(format!(
                "op '{what}' needs a number, got a {}",
                json_type(other)
            ))
        }
    };
    Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .or_else(|_| Decimal::from_str(&text))
        .map_err(|_| format!("op '{what}': '{text}' is not a decimal number"))
}

fn integer(v: &Value) -> Result<Value, String> {
    let d = parse_decimal("integer", v)?;
    if !d.fract().is_zero() {
        return Err(format!(
            "op 'integer': '{d}' has a fractional part; use decimal with scale 0 to round it"
        ));
    }
    let text = d.trunc().normalize().to_string();
    Ok(Value::Number(
        serde_json::Number::from_str(&text).map_err(|e| e.to_string())?,
    ))
}

fn decimal(op: &DecimalOp, v: &Value) -> Result<Value, String> {
    let mut d = parse_decimal("decimal", v)?;
    if let Some(scale) = op.scale {
        d = d.round_dp_with_strategy(scale, op.rounding);
        d.rescale(scale);
    }
    let text = d.to_string();
    Ok(match op.out {
        DecimalOut::String => Value::String(text),
        DecimalOut::Number | DecimalOut::Auto => Value::Number(
            serde_json::Number::from_str(&text).map_err(|e| format!("op 'decimal': {e}"))?,
        ),
    })
}

/// Parse a rounding strategy name.
pub fn rounding(name: &str) -> Option<RoundingStrategy> {
    Some(match name {
        "half_up" => RoundingStrategy::MidpointAwayFromZero,
        "half_even" => RoundingStrategy::MidpointNearestEven,
        "half_down" => RoundingStrategy::MidpointTowardZero,
        "up" => RoundingStrategy::AwayFromZero,
        "down" => RoundingStrategy::ToZero,
        "ceiling" => RoundingStrategy::ToPositiveInfinity,
        "floor" => RoundingStrategy::ToNegativeInfinity,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn text_ops() {
        assert_eq!(
            Op::Trim.apply(Some(json!("  a b "))).unwrap(),
            Some(json!("a b"))
        );
        assert_eq!(
            Op::Upper.apply(Some(json!("đất ở"))).unwrap(),
            Some(json!("ĐẤT Ở"))
        );
        assert_eq!(
            Op::Lower.apply(Some(json!("ĐẤT"))).unwrap(),
            Some(json!("đất"))
        );
        // "Nguyễn" decomposed (e + circumflex + tilde) → composed
        let decomposed = "Nguye\u{302}\u{303}n";
        assert_eq!(
            Op::Nfc.apply(Some(json!(decomposed))).unwrap(),
            Some(json!("Nguyễn"))
        );
        assert_eq!(
            Op::Nfd
                .apply(Some(json!("Nguyễn")))
                .unwrap()
                .unwrap()
                .as_str()
                .unwrap()
                .chars()
                .count(),
            8
        );
        assert_eq!(
            Op::ToString.apply(Some(num("1500000.50"))).unwrap(),
            Some(json!("1500000.50"))
        );
        assert_eq!(
            Op::Replace {
                from: "-".into(),
                to: "".into()
            }
            .apply(Some(json!("a-b-c")))
            .unwrap(),
            Some(json!("abc"))
        );
        assert_eq!(
            Op::PadLeft { width: 4, ch: '0' }
                .apply(Some(num("32")))
                .unwrap(),
            Some(json!("0032"))
        );
        assert_eq!(
            Op::PadLeft { width: 2, ch: '0' }
                .apply(Some(json!("123")))
                .unwrap(),
            Some(json!("123"))
        );
        assert!(Op::Trim
            .apply(Some(json!({"a": 1})))
            .unwrap_err()
            .contains("needs text, got a object"));
        assert_eq!(Op::Trim.apply(None).unwrap(), None);
        assert_eq!(
            Op::Default(json!("x")).apply(None).unwrap(),
            Some(json!("x"))
        );
        assert_eq!(
            Op::Default(json!("x")).apply(Some(json!("y"))).unwrap(),
            Some(json!("y"))
        );
    }

    #[test]
    fn numbers_are_exact() {
        assert_eq!(
            Op::Integer
                .apply(Some(json!("0123")))
                .unwrap()
                .unwrap()
                .to_string(),
            "123"
        );
        assert_eq!(
            Op::Integer
                .apply(Some(num("12.000")))
                .unwrap()
                .unwrap()
                .to_string(),
            "12"
        );
        assert!(Op::Integer
            .apply(Some(json!("12.5")))
            .unwrap_err()
            .contains("fractional"));
        assert!(Op::Integer
            .apply(Some(json!("abc")))
            .unwrap_err()
            .contains("not a decimal"));
        let d = |scale, r: &str, out| {
            Op::Decimal(DecimalOp {
                scale: Some(scale),
                rounding: rounding(r).unwrap(),
                out,
            })
        };
        // 0.1 + 0.2 style values survive: the exact text is used, never f64.
        assert_eq!(
            d(2, "half_up", DecimalOut::Number)
                .apply(Some(num("1234567890123.005")))
                .unwrap()
                .unwrap()
                .to_string(),
            "1234567890123.01"
        );
        assert_eq!(
            d(2, "half_even", DecimalOut::Number)
                .apply(Some(num("1234567890123.005")))
                .unwrap()
                .unwrap()
                .to_string(),
            "1234567890123.00"
        );
        assert_eq!(
            d(0, "half_up", DecimalOut::String)
                .apply(Some(json!("1500000.5")))
                .unwrap(),
            Some(json!("1500001"))
        );
        assert_eq!(
            d(2, "down", DecimalOut::String)
                .apply(Some(json!("7")))
                .unwrap(),
            Some(json!("7.00"))
        );
    }

    #[test]
    fn lookups() {
        let t = Arc::new(LookupTable {
            name: "kenh".into(),
            origin: "m.yaml".into(),
            map: [("1".to_string(), json!("TRUC_TIEP"))]
                .into_iter()
                .collect(),
            fallback: None,
        });
        assert_eq!(
            Op::Lookup(t.clone()).apply(Some(num("1"))).unwrap(),
            Some(json!("TRUC_TIEP"))
        );
        let e = Op::Lookup(t.clone()).apply(Some(json!("9"))).unwrap_err();
        assert!(
            e.contains("lookup table 'kenh'") && e.contains("code '9'"),
            "{e}"
        );
        let mut with_fallback = (*t).clone();
        with_fallback.fallback = Some(json!("KHAC"));
        assert_eq!(
            Op::Lookup(Arc::new(with_fallback))
                .apply(Some(json!("9")))
                .unwrap(),
            Some(json!("KHAC"))
        );
    }
}
