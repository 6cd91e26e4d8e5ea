//! Compiling a mapping file into a [`CompiledMapping`].
//!
//! The compiler walks the located YAML tree and, for every problem, records a
//! [`Diagnostic`] with `file:line:column` and the rule it is about
//! (`rules[3] (target: NgayHenTra)`), then keeps going: an administrator sees
//! every error of a file in one run. Only when the file is clean does it return
//! a mapping.
//!
//! Everything that can be decided at load time is decided here: paths are
//! split, date patterns parsed, lookup tables loaded and attached to the ops
//! that use them, jq expressions compiled, templates split into parts. The
//! schema checks ([`super::schema_check`]) run on the compiled rules.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::date::{DateFormat, DateOp};
use super::jq::Jq;
pub use super::model::{CompiledMapping, Endpoint, Expect, TestCase, TestInput, XmlSpec};
use super::model::{Part, Rule, Src};
use super::ops::{self, DecimalOp, DecimalOut, LookupTable, Op};
use super::path::{Path, Target};
use super::yaml::{self, Kind, Node};
use super::Schemas;
use crate::{Diagnostic, Diagnostics};

const TOP_KEYS: &[&str] = &[
    "id",
    "version",
    "description",
    "source",
    "target",
    "lookups",
    "rules",
    "tests",
];
const RULE_KEYS: &[&str] = &[
    "target",
    "source",
    "const",
    "default",
    "required",
    "pipe",
    "template",
    "concat",
    "join",
    "separator",
    "for_each",
    "rules",
    "when",
    "expr",
    "description",
    "note",
];
const FORMATS: &[&str] = &["json", "xml", "tax-gip", "station-file"];

/// Where to find things while compiling one file.
pub struct Context<'a> {
    /// Name of the file in messages (e.g. `mappings/province-portal/x.yaml`).
    pub file: &'a str,
    /// Id to use when the file has none (path under `mappings/` without `.yaml`).
    pub default_id: Option<String>,
    /// The mappings folder: every path a mapping names must stay inside it
    /// ([`super::paths::confine`]), and messages show paths relative to it.
    pub root: PathBuf,
    /// Directories (inside `root`) in which `lookups: {x: {file: ...}}` paths are resolved, in order.
    pub lookup_dirs: Vec<PathBuf>,
    /// Directory that `input_file` of tests is relative to.
    pub base_dir: PathBuf,
    /// A sibling `<name>.tests.yaml`: (file name for messages, text).
    pub sibling_tests: Option<(String, String)>,
    pub schemas: &'a dyn Schemas,
    /// Cache of lookup files already loaded (shared by a whole set).
    pub lookup_cache: &'a mut HashMap<PathBuf, Result<Arc<LookupTable>, Diagnostics>>,
}

pub(crate) struct Cx<'a> {
    pub file: String,
    pub diags: Diagnostics,
    lookups: HashMap<String, Arc<LookupTable>>,
    _p: std::marker::PhantomData<&'a ()>,
}

impl Cx<'_> {
    pub(crate) fn new(file: &str) -> Self {
        Cx {
            file: file.to_owned(),
            diags: Diagnostics::default(),
            lookups: HashMap::new(),
            _p: Default::default(),
        }
    }

    pub(crate) fn err(&mut self, node: &Node, context: &str, message: impl Into<String>) {
        self.err_at(node.line, node.column, context, message);
    }

    pub(crate) fn err_at(
        &mut self,
        line: usize,
        column: usize,
        context: &str,
        message: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::at(&self.file, line, column, context, message));
    }

    /// The entries of a mapping node; reports non-mappings and unknown keys.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        context: &str,
        allowed: &[&str],
    ) -> Option<&'n [(Node, Node)]> {
        let Some(entries) = node.as_map() else {
            self.err(
                node,
                context,
                format!(
                    "expected a mapping (key: value), found {}",
                    node.type_name()
                ),
            );
            return None;
        };
        for (k, _) in entries {
            match k.as_str() {
                Some(name) if allowed.contains(&name) => {}
                _ => {
                    let name = k.scalar_text().unwrap_or_else(|| k.type_name().to_owned());
                    let hint = suggest(&name, allowed)
                        .map(|s| format!("did you mean '{s}'? "))
                        .unwrap_or_default();
                    self.err(
                        k,
                        context,
                        format!(
                            "unknown key '{name}' ({hint}allowed: {})",
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
        Some(entries)
    }

    fn string(&mut self, node: &Node, context: &str, what: &str) -> Option<String> {
        match &node.kind {
            Kind::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Kind::String(_) => {
                self.err(node, context, format!("{what} must not be empty"));
                None
            }
            _ => {
                self.err(
                    node,
                    context,
                    format!("{what} must be a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn required<'n>(&mut self, parent: &'n Node, key: &str, context: &str) -> Option<&'n Node> {
        let found = parent.get(key);
        if found.is_none() && parent.as_map().is_some() {
            self.err(parent, context, format!("missing required key '{key}'"));
        }
        found
    }
}

/// The closest allowed name (edit distance ≤ 2), for "did you mean".
fn suggest<'a>(name: &str, allowed: &[&'a str]) -> Option<&'a str> {
    fn dist(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    allowed
        .iter()
        .map(|a| (dist(name, a), *a))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, a)| a)
}

/// Compile one mapping file's text. Returns every problem found.
pub fn compile(ctx: Context<'_>, text: &str) -> Result<CompiledMapping, Diagnostics> {
    let file = ctx.file;
    let root = yaml::parse(file, text).map_err(|d| Diagnostics(vec![d]))?;
    let mut cx = Cx::new(file);
    let top = "mapping";
    if cx.fields(&root, top, TOP_KEYS).is_none() {
        return Err(cx.diags);
    }

    let id = match root.get("id") {
        Some(n) => cx.string(n, "id", "id").unwrap_or_default(),
        None => match &ctx.default_id {
            Some(id) => id.clone(),
            None => {
                cx.err(&root, top, "missing required key 'id' (it can only be left out for files under the mappings directory)");
                String::new()
            }
        },
    };
    let version = match cx.required(&root, "version", top) {
        Some(n) => match whole_version(&n.kind) {
            Some(v) => v,
            None => {
                cx.err(
                    n,
                    "version",
                    "version must be a whole number, 1 or more (increase it on every change)",
                );
                0
            }
        },
        None => 0,
    };
    let description = match root.get("description") {
        Some(n) => cx
            .string(n, "description", "description")
            .unwrap_or_default(),
        None => String::new(),
    };
    let source = cx
        .required(&root, "source", top)
        .and_then(|n| endpoint(&mut cx, n, "source"));
    let target = cx
        .required(&root, "target", top)
        .and_then(|n| endpoint(&mut cx, n, "target"));

    if let Some(n) = root.get("lookups") {
        lookups(&mut cx, n, &ctx.root, &ctx.lookup_dirs, ctx.lookup_cache);
    }
    let rules = match cx.required(&root, "rules", top) {
        Some(n) => rule_list(&mut cx, n, ""),
        None => Vec::new(),
    };

    let mut tests = Vec::new();
    if let Some(n) = root.get("tests") {
        tests.extend(test_list(&mut cx, n, &ctx.root, &ctx.base_dir));
    }
    if let Some((tfile, ttext)) = &ctx.sibling_tests {
        match yaml::parse(tfile, ttext) {
            Err(d) => cx.diags.push(d),
            Ok(tnode) => {
                let mut tcx = Cx::new(tfile);
                if tcx.fields(&tnode, "tests file", &["tests"]).is_some() {
                    if let Some(list) = tcx.required(&tnode, "tests", "tests file") {
                        tests.extend(test_list(&mut tcx, list, &ctx.root, &ctx.base_dir));
                    }
                }
                cx.diags.extend(tcx.diags);
            }
        }
    }

    let (Some(source), Some(target)) = (source, target) else {
        return Err(cx.diags);
    };
    let mut mapping = CompiledMapping {
        id,
        version,
        description,
        source,
        target,
        content_hash: hex::encode(Sha256::digest(text.as_bytes())),
        file: file.to_owned(),
        tests,
        rules,
    };
    if ctx.schemas.enabled() {
        let found = super::schema_check::check(&cx.file, &mut mapping, &root, ctx.schemas);
        cx.diags.extend(found);
    }
    cx.diags.into_result()?;
    Ok(mapping)
}

fn endpoint(cx: &mut Cx, node: &Node, side: &str) -> Option<Endpoint> {
    let allowed: &[&str] = if side == "target" {
        &["system", "message_type", "format", "schema", "xml"]
    } else {
        &["system", "message_type", "format", "schema"]
    };
    cx.fields(node, side, allowed)?;
    let system = cx
        .required(node, "system", side)
        .and_then(|n| cx.string(n, side, "system"));
    let message_type = cx
        .required(node, "message_type", side)
        .and_then(|n| cx.string(n, side, "message_type"));
    let format = match cx.required(node, "format", side) {
        Some(n) => match cx.string(n, side, "format") {
            Some(f) if FORMATS.contains(&f.as_str()) => Some(f),
            Some(f) => {
                cx.err(
                    n,
                    side,
                    format!("unknown format '{f}' (known: {})", FORMATS.join(", ")),
                );
                None
            }
            None => None,
        },
        None => None,
    };
    let schema = match node.get("schema") {
        Some(n) => cx.string(n, side, "schema"),
        None => None,
    };
    let xml = match node.get("xml") {
        Some(n) => xml_spec(cx, n),
        None => None,
    };
    let (system, message_type, format) = (system?, message_type?, format?);
    let schema = schema.unwrap_or_else(|| format!("{system}/{message_type}"));
    Some(Endpoint {
        system,
        message_type,
        format,
        schema,
        xml,
    })
}

fn xml_spec(cx: &mut Cx, node: &Node) -> Option<XmlSpec> {
    let ctx = "target.xml";
    cx.fields(node, ctx, &["root", "namespaces"])?;
    let root = cx
        .required(node, "root", ctx)
        .and_then(|n| cx.string(n, ctx, "xml.root"))?;
    let mut namespaces = indexmap::IndexMap::new();
    if let Some(ns) = node.get("namespaces") {
        match ns.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    let prefix = match &k.kind {
                        Kind::String(s) => s.clone(),
                        Kind::Null => String::new(),
                        _ => {
                            cx.err(k, ctx, "namespace prefixes must be strings (\"\" for the default namespace)");
                            continue;
                        }
                    };
                    if let Some(uri) = cx.string(v, ctx, "namespace URI") {
                        namespaces.insert(prefix, uri);
                    }
                }
            }
            None => cx.err(ns, ctx, "namespaces must be a mapping of prefix: URI"),
        }
    }
    Some(XmlSpec { root, namespaces })
}

fn lookups(
    cx: &mut Cx,
    node: &Node,
    root: &FsPath,
    dirs: &[PathBuf],
    cache: &mut HashMap<PathBuf, Result<Arc<LookupTable>, Diagnostics>>,
) {
    let Some(entries) = node.as_map() else {
        cx.err(
            node,
            "lookups",
            "lookups must be a mapping of name: {map: ...} or name: {file: ...}",
        );
        return;
    };
    for (k, v) in entries {
        let Some(name) = k.scalar_text() else {
            cx.err(k, "lookups", "lookup names must be strings");
            continue;
        };
        let context = format!("lookups.{name}");
        if cx
            .fields(v, &context, &["map", "fallback", "file", "description"])
            .is_none()
        {
            continue;
        }
        let table = match (v.get("map"), v.get("file")) {
            (Some(m), None) => {
                table_from_map(cx, &name, &cx.file.clone(), m, v.get("fallback"), &context)
            }
            (None, Some(f)) => {
                let Some(rel) = cx.string(f, &context, "file") else {
                    continue;
                };
                let mut found = None;
                let mut refused = None;
                for d in dirs {
                    match super::paths::confine(root, d, &rel) {
                        Ok(Some(p)) => {
                            found = Some(p);
                            break;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            refused = Some(e);
                            break;
                        }
                    }
                }
                if let Some(why) = refused {
                    cx.err(f, &context, format!("lookup file {why}"));
                    continue;
                }
                let Some(path) = found else {
                    let tried: Vec<String> = dirs
                        .iter()
                        .map(|d| super::paths::shown(root, &d.join(&rel)))
                        .collect();
                    cx.err(
                        f,
                        &context,
                        format!(
                            "lookup file '{rel}' not found (looked in: {})",
                            tried.join(", ")
                        ),
                    );
                    continue;
                };
                let loaded = cache
                    .entry(path.clone())
                    .or_insert_with(|| load_lookup_file(&name, &path, root))
                    .clone();
                match loaded {
                    Ok(t) => {
                        let mut t = (*t).clone();
                        t.name = name.clone();
                        if let Some(fb) = v.get("fallback") {
                            t.fallback = Some(fb.to_json());
                        }
                        Some(t)
                    }
                    Err(d) => {
                        cx.err(
                            f,
                            &context,
                            format!("lookup file '{rel}' is invalid (see below)"),
                        );
                        cx.diags.extend(d);
                        None
                    }
                }
            }
            (Some(_), Some(f)) => {
                cx.err(f, &context, "give either 'map' or 'file', not both");
                None
            }
            (None, None) => {
                cx.err(
                    v,
                    &context,
                    "a lookup needs 'map' (inline table) or 'file' (a YAML file of code: value)",
                );
                None
            }
        };
        if let Some(t) = table {
            cx.lookups.insert(name, Arc::new(t));
        }
    }
}

fn table_from_map(
    cx: &mut Cx,
    name: &str,
    origin: &str,
    m: &Node,
    fallback: Option<&Node>,
    context: &str,
) -> Option<LookupTable> {
    let Some(entries) = m.as_map() else {
        cx.err(m, context, "map must be a mapping of code: value");
        return None;
    };
    let mut map = HashMap::with_capacity(entries.len());
    for (k, v) in entries {
        match k.scalar_text() {
            Some(code) => {
                if matches!(v.kind, Kind::Seq(_) | Kind::Map(_) | Kind::Null) {
                    cx.err(
                        v,
                        context,
                        format!("value of code '{code}' must be a string, number or boolean"),
                    );
                }
                map.insert(code, v.to_json());
            }
            None => cx.err(k, context, "codes must be strings or numbers"),
        }
    }
    Some(LookupTable {
        name: name.to_owned(),
        origin: origin.to_owned(),
        map,
        fallback: fallback.map(Node::to_json),
    })
}

/// A lookup file: a plain `code: value` map (a `fallback` key is the fallback),
/// or `{map: {...}, fallback: ..., description: ...}`.
fn load_lookup_file(
    name: &str,
    path: &FsPath,
    root: &FsPath,
) -> Result<Arc<LookupTable>, Diagnostics> {
    let file = super::paths::shown(root, path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: file.clone(),
            line: 0,
            column: 0,
            context: String::new(),
            message: format!("cannot read lookup file: {e}"),
        }])
    })?;
    let node = yaml::parse(&file, &text).map_err(|d| Diagnostics(vec![d]))?;
    let mut cx = Cx::new(&file);
    let structured = node.get("map").is_some_and(|m| m.as_map().is_some());
    let table = if structured {
        cx.fields(&node, "lookup file", &["map", "fallback", "description"]);
        table_from_map(
            &mut cx,
            name,
            &file,
            node.get("map").expect("checked"),
            node.get("fallback"),
            "lookup file",
        )
    } else {
        let t = table_from_map(&mut cx, name, &file, &node, None, "lookup file");
        t.map(|mut t| {
            t.fallback = t.map.remove("fallback");
            t
        })
    };
    cx.diags.into_result()?;
    Ok(Arc::new(table.expect("no diagnostics means a table")))
}

fn rule_list(cx: &mut Cx, node: &Node, prefix: &str) -> Vec<Rule> {
    let Kind::Seq(items) = &node.kind else {
        cx.err(
            node,
            &format!("{prefix}rules"),
            format!("rules must be a list, found {}", node.type_name()),
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let base = format!("{prefix}rules[{i}]");
        if let Some(r) = rule(cx, item, &base) {
            out.push(r);
        }
    }
    out
}

fn rule(cx: &mut Cx, node: &Node, base: &str) -> Option<Rule> {
    let label = match node.get("target").and_then(Node::as_str) {
        Some(t) => format!("{base} (target: {t})"),
        None => base.to_owned(),
    };
    let l = label.as_str();
    cx.fields(node, l, RULE_KEYS)?;
    let errors_before = cx.diags.len();

    let target = cx.required(node, "target", l).and_then(|n| {
        let t = cx.string(n, l, "target")?;
        Target::parse(&t).map_err(|e| cx.err(n, l, e)).ok()
    });

    let kinds = [
        "source", "const", "template", "concat", "join", "expr", "for_each",
    ];
    let present: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| node.get(k).is_some())
        .collect();
    if present.len() > 1 {
        cx.err(
            node,
            l,
            format!(
                "give only one of {} (found {})",
                kinds.join(", "),
                present.join(" and ")
            ),
        );
    }
    let src_path = |cx: &mut Cx, n: &Node| -> Option<Path> {
        let text = cx.string(n, l, "source path")?;
        Path::parse(&text, false).map_err(|e| cx.err(n, l, e)).ok()
    };
    let value = match present.first().copied() {
        None => {
            if node.get("default").is_none() {
                cx.err(node, l, "a rule needs a value: source, const, template, concat, expr, for_each or default");
            }
            Some(Src::Nothing)
        }
        Some("source") => src_path(cx, node.get("source").expect("present")).map(Src::Path),
        Some("const") => {
            let n = node.get("const").expect("present");
            if matches!(n.kind, Kind::Null) {
                cx.err(
                    n,
                    l,
                    "const must not be null (a rule never writes null; leave the rule out)",
                );
            }
            Some(Src::Const(n.to_json()))
        }
        Some("template") => {
            let n = node.get("template").expect("present");
            cx.string(n, l, "template")
                .and_then(|t| template(&t).map_err(|e| cx.err(n, l, e)).ok())
                .map(Src::Template)
        }
        Some(k @ ("concat" | "join")) => {
            let n = node.get(k).expect("present");
            match &n.kind {
                Kind::Seq(items) if !items.is_empty() => {
                    let paths: Vec<Path> = items.iter().filter_map(|p| src_path(cx, p)).collect();
                    let separator = match node.get("separator") {
                        Some(s) => match &s.kind {
                            Kind::String(s) => s.clone(),
                            _ => {
                                cx.err(s, l, "separator must be a string");
                                String::new()
                            }
                        },
                        None => String::new(),
                    };
                    (paths.len() == items.len()).then_some(Src::Concat { paths, separator })
                }
                _ => {
                    cx.err(
                        n,
                        l,
                        format!("{k} must be a non-empty list of source paths"),
                    );
                    None
                }
            }
        }
        Some("expr") => {
            let n = node.get("expr").expect("present");
            cx.string(n, l, "expr")
                .and_then(|e| Jq::compile(&e).map_err(|m| cx.err(n, l, m)).ok())
                .map(Src::Expr)
        }
        Some("for_each") => {
            let n = node.get("for_each").expect("present");
            let path = src_path(cx, n);
            let rules = match node.get("rules") {
                Some(r) => rule_list(cx, r, &format!("{base}.")),
                None => {
                    cx.err(node, l, "for_each needs 'rules' (the rules for each item)");
                    Vec::new()
                }
            };
            if let Some(p) = node.get("pipe") {
                cx.err(
                    p,
                    l,
                    "pipe cannot be used with for_each (put pipes on the nested rules)",
                );
            }
            path.map(|path| Src::ForEach { path, rules })
        }
        Some(_) => unreachable!("only known kinds are present"),
    };
    if node.get("rules").is_some() && node.get("for_each").is_none() {
        cx.err(
            node.get("rules").expect("present"),
            l,
            "'rules' inside a rule is only allowed with for_each",
        );
    }
    if node.get("separator").is_some() && node.get("concat").is_none() && node.get("join").is_none()
    {
        cx.err(
            node.get("separator").expect("present"),
            l,
            "'separator' is only allowed with concat/join",
        );
    }

    let pipe = match node.get("pipe") {
        Some(p) if node.get("for_each").is_none() => pipe(cx, p, l),
        _ => Vec::new(),
    };
    let default = node.get("default").map(|d| {
        if matches!(d.kind, Kind::Null) {
            cx.err(d, l, "default must not be null");
        }
        d.to_json()
    });
    let required = match node.get("required") {
        Some(n) => match n.kind {
            Kind::Bool(b) => b,
            _ => {
                cx.err(n, l, "required must be true or false");
                false
            }
        },
        None => false,
    };
    let when = node.get("when").and_then(|n| {
        let code = cx.string(n, l, "when")?;
        Jq::compile(&code).map_err(|e| cx.err(n, l, e)).ok()
    });

    if cx.diags.len() > errors_before {
        return None;
    }
    Some(Rule {
        label,
        target: target?,
        value: value?,
        pipe,
        default,
        required,
        when,
        value_pos: present
            .first()
            .or(Some(&"default"))
            .and_then(|k| node.get(k))
            .map_or((node.line, node.column), |n| (n.line, n.column)),
        target_pos: node
            .get("target")
            .map_or((node.line, node.column), |n| (n.line, n.column)),
    })
}

fn template(text: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let rest = &text[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!("template: '{{' at character {} has no closing '}}' (write {{{{ for a literal brace)", i + 1));
                };
                let path =
                    Path::parse(&rest[..end], false).map_err(|e| format!("template: {e}"))?;
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Field(path));
                for _ in 0..rest[..=end].chars().count() {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "template: '}}' at character {} without '{{' (write }}}} for a literal brace)",
                    i + 1
                ))
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

const OPS: &[&str] = &[
    "trim", "upper", "lower", "nfc", "nfd", "string", "integer", "decimal", "date", "lookup",
    "replace", "pad_left", "default",
];

fn pipe(cx: &mut Cx, node: &Node, l: &str) -> Vec<Op> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let (name, name_node, arg) = match &item.kind {
            Kind::String(s) => (s.clone(), item, None),
            Kind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                (k.scalar_text().unwrap_or_default(), k, Some(v))
            }
            _ => {
                cx.err(
                    item,
                    l,
                    "each pipe op is a name (trim) or a one-key mapping ({decimal: {scale: 0}})",
                );
                continue;
            }
        };
        let unknown = |cx: &mut Cx| {
            let hint = suggest(&name, OPS)
                .map(|s| format!("did you mean '{s}'? "))
                .unwrap_or_default();
            cx.err(
                name_node,
                l,
                format!("unknown op '{name}' ({hint}known: {})", OPS.join(", ")),
            );
        };
        let simple = match name.as_str() {
            "trim" => Some(Op::Trim),
            "upper" => Some(Op::Upper),
            "lower" => Some(Op::Lower),
            "nfc" => Some(Op::Nfc),
            "nfd" => Some(Op::Nfd),
            "string" => Some(Op::ToString),
            "integer" => Some(Op::Integer),
            _ => None,
        };
        if let Some(op) = simple {
            if let Some(a) = arg {
                if !matches!(a.kind, Kind::Null) {
                    cx.err(a, l, format!("op '{name}' takes no arguments"));
                }
            }
            out.push(op);
            continue;
        }
        if !OPS.contains(&name.as_str()) {
            unknown(cx);
            continue;
        }
        let Some(arg) = arg else {
            cx.err(
                item,
                l,
                format!("op '{name}' needs arguments, e.g. {}", op_example(&name)),
            );
            continue;
        };
        let ctx = format!("{l}: op '{name}'");
        let op = match name.as_str() {
            "decimal" => decimal_op(cx, arg, &ctx),
            "date" => date_op(cx, arg, &ctx),
            "lookup" => match cx.string(arg, &ctx, "lookup table name") {
                Some(t) => match cx.lookups.get(&t) {
                    Some(table) => Some(Op::Lookup(table.clone())),
                    None => {
                        let known: Vec<&str> = cx.lookups.keys().map(String::as_str).collect();
                        cx.err(
                            arg,
                            &ctx,
                            format!(
                                "no lookup table named '{t}' (defined: {})",
                                if known.is_empty() {
                                    "none".to_owned()
                                } else {
                                    known.join(", ")
                                }
                            ),
                        );
                        None
                    }
                },
                None => None,
            },
            "replace" => {
                cx.fields(arg, &ctx, &["from", "to"]);
                let from = cx.required(arg, "from", &ctx).and_then(|n| n.scalar_text());
                let to = cx
                    .required(arg, "to", &ctx)
                    .map(|n| n.scalar_text().unwrap_or_default());
                match (from, to) {
                    (Some(from), Some(to)) if !from.is_empty() => Some(Op::Replace { from, to }),
                    (Some(_), Some(_)) => {
                        cx.err(arg, &ctx, "replace.from must not be empty");
                        None
                    }
                    _ => None,
                }
            }
            "pad_left" => {
                cx.fields(arg, &ctx, &["width", "char"]);
                let width = cx.required(arg, "width", &ctx).and_then(|n| match &n.kind {
                    Kind::Number(w) if w.as_u64().is_some_and(|w| (1..=1000).contains(&w)) => {
                        w.as_u64().map(|w| w as usize)
                    }
                    _ => {
                        cx.err(n, &ctx, "width must be a whole number from 1 to 1000");
                        None
                    }
                });
                let ch = match arg.get("char") {
                    None => Some('0'),
                    Some(n) => {
                        let s = n.scalar_text().unwrap_or_default();
                        let mut it = s.chars();
                        match (it.next(), it.next()) {
                            (Some(c), None) => Some(c),
                            _ => {
                                cx.err(n, &ctx, "char must be exactly one character");
                                None
                            }
                        }
                    }
                };
                width.zip(ch).map(|(width, ch)| Op::PadLeft { width, ch })
            }
            "default" => {
                if matches!(arg.kind, Kind::Null) {
                    cx.err(arg, &ctx, "default must not be null");
                }
                Some(Op::Default(arg.to_json()))
            }
            _ => unreachable!("every known op is handled"),
        };
        if let Some(op) = op {
            out.push(op);
        }
    }
    out
}

fn op_example(name: &str) -> &'static str {
    match name {
        "decimal" => "{decimal: {scale: 0, rounding: half_up}}",
        "date" => "{date: {from: yyyyMMddHHmmss, to: rfc3339, tz: Asia/Ho_Chi_Minh}}",
        "lookup" => "{lookup: land_use}",
        "replace" => "{replace: {from: \"-\", to: \"\"}}",
        "pad_left" => "{pad_left: {width: 4, char: \"0\"}}",
        _ => "{default: \"0\"}",
    }
}

fn decimal_op(cx: &mut Cx, arg: &Node, ctx: &str) -> Option<Op> {
    cx.fields(arg, ctx, &["scale", "rounding", "as"])?;
    let scale = match arg.get("scale") {
        None => None,
        Some(n) => match &n.kind {
            Kind::Number(s) if s.as_u64().is_some_and(|s| s <= 28) => s.as_u64().map(|s| s as u32),
            _ => {
                cx.err(n, ctx, "scale must be a whole number from 0 to 28");
                return None;
            }
        },
    };
    let rounding = match arg.get("rounding") {
        None => rust_decimal::RoundingStrategy::MidpointAwayFromZero,
        Some(n) => match n.as_str().and_then(ops::rounding) {
            Some(r) => r,
            None => {
                cx.err(n, ctx, "rounding must be one of half_up, half_even, half_down, up, down, ceiling, floor");
                return None;
            }
        },
    };
    let out = match arg.get("as").and_then(Node::as_str) {
        None => DecimalOut::Auto,
        Some("number") => DecimalOut::Number,
        Some("string") => DecimalOut::String,
        Some(_) => {
            cx.err(
                arg.get("as").expect("present"),
                ctx,
                "as must be number or string",
            );
            return None;
        }
    };
    Some(Op::Decimal(DecimalOp {
        scale,
        rounding,
        out,
    }))
}

fn date_op(cx: &mut Cx, arg: &Node, ctx: &str) -> Option<Op> {
    cx.fields(arg, ctx, &["from", "to", "tz"])?;
    let fmt = |cx: &mut Cx, key: &str| -> Option<DateFormat> {
        let n = cx.required(arg, key, ctx)?;
        let text = cx.string(n, ctx, key)?;
        DateFormat::parse(&text).map_err(|e| cx.err(n, ctx, e)).ok()
    };
    let from = fmt(cx, "from");
    let to = fmt(cx, "to");
    let tz = match arg.get("tz") {
        None => Some(chrono_tz::Asia::Ho_Chi_Minh),
        Some(n) => cx.string(n, ctx, "tz").and_then(|t| {
            t.parse::<chrono_tz::Tz>()
                .map_err(|_| {
                    cx.err(
                        n,
                        ctx,
                        format!(
                            "unknown time zone '{t}' (use an IANA name such as Asia/Ho_Chi_Minh)"
                        ),
                    )
                })
                .ok()
        }),
    };
    Some(Op::Date(DateOp {
        from: from?,
        to: to?,
        tz: tz?,
    }))
}

fn test_list(cx: &mut Cx, node: &Node, root: &FsPath, base_dir: &FsPath) -> Vec<TestCase> {
    let Kind::Seq(items) = &node.kind else {
        cx.err(node, "tests", "tests must be a list of cases");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let label = match item.get("name").and_then(Node::as_str) {
            Some(n) => format!("tests[{i}] ({n})"),
            None => format!("tests[{i}]"),
        };
        let l = label.as_str();
        if cx
            .fields(
                item,
                l,
                &[
                    "name",
                    "description",
                    "input",
                    "input_file",
                    "expect",
                    "expect_error",
                ],
            )
            .is_none()
        {
            continue;
        }
        let name = item
            .get("name")
            .and_then(|n| cx.string(n, l, "name"))
            .unwrap_or_else(|| format!("case {}", i + 1));
        let input = match (item.get("input"), item.get("input_file")) {
            (Some(i), None) => Some(TestInput::Tree(i.to_json())),
            (None, Some(f)) => cx.string(f, l, "input_file").and_then(|rel| {
                let path = match super::paths::confine(root, base_dir, &rel) {
                    Ok(Some(p)) => p,
                    Ok(None) => {
                        cx.err(
                            f,
                            l,
                            format!("input_file `{rel}` not found next to the mapping file"),
                        );
                        return None;
                    }
                    Err(why) => {
                        cx.err(f, l, format!("input_file {why}"));
                        return None;
                    }
                };
                match std::fs::read(&path) {
                    Err(e) => {
                        cx.err(
                            f,
                            l,
                            format!(
                                "cannot read input_file {}: {e}",
                                super::paths::shown(root, &path)
                            ),
                        );
                        None
                    }
                    Ok(bytes) if rel.ends_with(".json") => match serde_json::from_slice(&bytes) {
                        Ok(v) => Some(TestInput::Tree(v)),
                        Err(e) => {
                            cx.err(
                                f,
                                l,
                                format!(
                                    "input_file {} is not valid JSON: line {}, column {}: {e}",
                                    super::paths::shown(root, &path),
                                    e.line(),
                                    e.column()
                                ),
                            );
                            None
                        }
                    },
                    Ok(bytes) => Some(TestInput::Bytes { path, bytes }),
                }
            }),
            _ => {
                cx.err(
                    item,
                    l,
                    "a test case needs exactly one of 'input' or 'input_file'",
                );
                None
            }
        };
        let expect = match (item.get("expect"), item.get("expect_error")) {
            (Some(e), None) => Some(Expect::Output(e.to_json())),
            (None, Some(e)) => cx.string(e, l, "expect_error").map(Expect::ErrorContaining),
            _ => {
                cx.err(item, l, "a test case needs exactly one of 'expect' (the full output) or 'expect_error' (a substring of the error)");
                None
            }
        };
        if let (Some(input), Some(expect)) = (input, expect) {
            out.push(TestCase {
                name,
                origin: format!("{}:{}", cx.file, item.line),
                input,
                expect,
            });
        }
    }
    out
}

/// A mapping version: a whole number from 1 to `u32::MAX`.
fn whole_version(kind: &Kind) -> Option<u32> {
    match kind {
        Kind::Number(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v >= 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_parts() {
        let p = template("Thửa {ThuaDat.SoThua}, tờ {ThuaDat.SoTo} {{x}}").unwrap();
        assert_eq!(p.len(), 5);
        assert!(matches!(&p[4], Part::Lit(s) if s == " {x}"));
        assert!(template("a {b").unwrap_err().contains("no closing"));
        assert!(template("a } b").unwrap_err().contains("without"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("sorce", RULE_KEYS), Some("source"));
        assert_eq!(suggest("dat", OPS), Some("date"));
        assert_eq!(suggest("zzzzzz", OPS), None);
    }
}
