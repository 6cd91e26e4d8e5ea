//! The jq escape hatch (`when:` conditions and `expr:` rules) on top of jaq.
//!
//! Most rules are plain paths and ops, which the engine runs without jaq. When
//! an administrator needs a condition or a computation the declarative rules do
//! not cover, they write a jq expression. Each expression is parsed and compiled
//! once, at load time, into a [`Jq`] that is shared (it is `Send + Sync`) by
//! every message; running it converts the input to jaq's value type, which is
//! the price of the escape hatch and the reason the common rules avoid it.
//!
//! The message root is available inside every expression as `$root` (useful in
//! a `for_each`, where `.` is the current item).

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, unwrap_valr, Compiler, Ctx, Native, Vars};
use jaq_json::Val;
use serde_json::Value;

type D = data::JustLut<Val>;

/// A compiled jq expression.
pub struct Jq {
    filter: jaq_core::compile::Filter<Native<D>>,
    source: String,
    /// The most common condition, `.a.b == "text"` (or `!=`), evaluated without jaq.
    fast: Option<FastEq>,
}

/// `.path == "literal"` / `.path != "literal"`: same result as jq (a missing field is
/// `null`, which equals no string), without converting the input to jaq values.
#[derive(Debug)]
struct FastEq {
    path: Vec<String>,
    literal: String,
    negate: bool,
}

impl FastEq {
    fn parse(code: &str) -> Option<FastEq> {
        let (lhs, rhs, negate) = match (code.split_once("=="), code.split_once("!=")) {
            (Some((l, r)), None) => (l, r, false),
            (None, Some((l, r))) => (l, r, true),
            _ => return None,
        };
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        let ident = |s: &str| {
            let mut c = s.chars();
            c.next()
                .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        };
        let path: Vec<String> = lhs
            .strip_prefix('.')?
            .split('.')
            .map(str::to_owned)
            .collect();
        if !path.iter().all(|p| ident(p)) {
            return None;
        }
        let literal = rhs.strip_prefix('"')?.strip_suffix('"')?;
        if literal.contains(['"', '\\']) {
            return None;
        }
        Some(FastEq {
            path,
            literal: literal.to_owned(),
            negate,
        })
    }

    /// `None` when jq would raise an error (a path step on a non-object, non-null
    /// value): the caller then runs jaq, which reports it.
    fn eval(&self, input: &Value) -> Option<bool> {
        let mut cur = input;
        for k in &self.path {
            match cur {
                Value::Object(m) => match m.get(k) {
                    Some(v) => cur = v,
                    None => return Some(self.negate),
                },
                Value::Null => return Some(self.negate),
                _ => return None,
            }
        }
        let equal = matches!(cur, Value::String(s) if *s == self.literal);
        Some(equal != self.negate)
    }
}

impl std::fmt::Debug for Jq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jq({:?})", self.source)
    }
}

impl Jq {
    /// Parse and compile `code`. The error lists every problem jaq found.
    pub fn compile(code: &str) -> Result<Jq, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| format!("jq expression does not parse: {}", describe(code, &errs)))?;
        let filter = Compiler::default()
            .with_funs(funs)
            .with_global_vars(["$root"])
            .compile(modules)
            .map_err(|errs| format!("jq expression does not compile: {}", describe(code, &errs)))?;
        Ok(Jq {
            filter,
            source: code.to_owned(),
            fast: FastEq::parse(code),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Run on `input` with `$root`; returns the first output (None when the
    /// expression produces nothing, e.g. `empty` or a failed `select`).
    pub fn first(&self, input: &Value, root: &Value) -> Result<Option<Value>, String> {
        if let Some(b) = self.fast.as_ref().and_then(|f| f.eval(input)) {
            return Ok(Some(Value::Bool(b)));
        }
        let ctx = Ctx::<D>::new(&self.filter.lut, Vars::new([to_val(root)]));
        let mut out = self.filter.id.run((ctx, to_val(input))).map(unwrap_valr);
        match out.next() {
            None => Ok(None),
            Some(Ok(v)) => from_val(&v).map(Some),
            Some(Err(e)) => Err(format!("jq expression `{}` failed: {e}", self.source)),
        }
    }

    /// Run as a condition: true when the first output is neither `false` nor `null`.
    pub fn test(&self, input: &Value, root: &Value) -> Result<bool, String> {
        Ok(!matches!(
            self.first(input, root)?,
            None | Some(Value::Null) | Some(Value::Bool(false))
        ))
    }
}

fn describe<E: std::fmt::Debug>(code: &str, errs: &[(File<&str, ()>, E)]) -> String {
    let parts: Vec<String> = errs.iter().map(|(_, e)| format!("{e:?}")).collect();
    format!("`{code}`: {}", parts.join("; "))
}

/// serde_json → jaq. Numbers keep their exact text (decimals stay decimals).
pub fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => {
            let text = n.to_string();
            jaq_json::read::parse_single_num(text.as_bytes())
                .map(Val::Num)
                .unwrap_or_else(|| Val::utf8_str(text.into_bytes()))
        }
        Value::String(s) => Val::utf8_str(s.clone().into_bytes()),
        Value::Array(a) => a.iter().map(to_val).collect(),
        Value::Object(m) => {
            let mut out = jaq_json::Map::default();
            for (k, v) in m {
                out.insert(Val::utf8_str(k.clone().into_bytes()), to_val(v));
            }
            Val::obj(out)
        }
    }
}

/// jaq → serde_json. Byte strings and non-string keys are errors (they cannot be JSON).
pub fn from_val(v: &Val) -> Result<Value, String> {
    Ok(match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => {
            let text = n.to_string();
            match text.parse::<serde_json::Number>() {
                Ok(n) => Value::Number(n),
                Err(_) => Value::Null, // NaN / infinity have no JSON form
            }
        }
        Val::TStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::BStr(_) => return Err("jq produced a byte string, which has no JSON form".into()),
        Val::Arr(a) => Value::Array(a.iter().map(from_val).collect::<Result<_, _>>()?),
        Val::Obj(m) => {
            let mut out = serde_json::Map::with_capacity(m.len());
            for (k, v) in m.iter() {
                let Val::TStr(k) = k else {
                    return Err(format!(
                        "jq produced an object key that is not a string: {k}"
                    ));
                };
                out.insert(String::from_utf8_lossy(k).into_owned(), from_val(v)?);
            }
            Value::Object(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runs_with_root_and_keeps_decimals() {
        let jq = Jq::compile(r#""NVTC: " + (.DanhSachLePhi | length | tostring) + " " + $root.Ma"#)
            .unwrap();
        let v = json!({"DanhSachLePhi": [1, 2], "Ma": "X"});
        assert_eq!(jq.first(&v, &v).unwrap(), Some(json!("NVTC: 2 X")));
        let exact: Value = serde_json::from_str(r#"{"a": 1500000.50}"#).unwrap();
        let jq = Jq::compile(".a").unwrap();
        assert_eq!(
            jq.first(&exact, &exact).unwrap().unwrap().to_string(),
            "1500000.50"
        );
        assert!(Jq::compile(r#".TrangThaiHoSo == "6""#)
            .unwrap()
            .test(&json!({"TrangThaiHoSo": "6"}), &json!({}))
            .unwrap());
        assert!(!Jq::compile(r#".TrangThaiHoSo == "6""#)
            .unwrap()
            .test(&json!({}), &json!({}))
            .unwrap());
    }

    #[test]
    fn the_fast_path_agrees_with_jaq() {
        let inputs = [
            json!({"a": "6"}),
            json!({"a": "7"}),
            json!({"a": 6}),
            json!({}),
            json!(null),
            json!({"a": {"b": "x"}}),
            json!({"a": null}),
        ];
        for code in [
            r#".a == "6""#,
            r#".a != "6""#,
            r#".a.b == "x""#,
            r#" .a.b!="x" "#,
        ] {
            let jq = Jq::compile(code).unwrap();
            assert!(jq.fast.is_some(), "{code}");
            let mut slow = Jq::compile(code).unwrap();
            slow.fast = None;
            for i in &inputs {
                assert_eq!(jq.first(i, i), slow.first(i, i), "{code} on {i}");
            }
        }
        assert!(Jq::compile(r#".a == "x" and .b == "y""#)
            .unwrap()
            .fast
            .is_none());
        assert!(Jq::compile(r#".a == "\"""#).unwrap().fast.is_none());
        assert!(Jq::compile(".a == 1").unwrap().fast.is_none());
    }

    #[test]
    fn compile_errors_are_reported() {
        assert!(Jq::compile(".a |").unwrap_err().contains("does not parse"));
        assert!(Jq::compile("nosuchfn(1)")
            .unwrap_err()
            .contains("does not compile"));
        let e = Jq::compile(".a + 1")
            .unwrap()
            .first(&json!({"a": "x"}), &json!({}))
            .unwrap_err();
        assert!(e.contains("failed"), "{e}");
    }

    #[test]
    fn compiled_filters_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Jq>();
    }
}
