//! Routes: which inbound message fans out to which partners, through which mapping.
//!
//! `mappings/routes.yaml` is the one place that says "a dossier filed at the
//! provincial portal goes to LIS and to the national portal". Keeping it apart
//! from the mappings means an administrator can add a destination without
//! touching a translation, and can read the whole flow of the department in one
//! file.
//!
//! Loading checks everything that can be checked before the first message: each
//! referenced mapping exists, reads the route's `from` message type, and writes
//! for the destination system; every `when` compiles. All problems are
//! reported at once with `file:line:column`. At run time, [`Routes::resolve`]
//! is a lookup by `(system, message_type)` plus the pre-compiled conditions.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::mapping::jq::Jq;
use crate::mapping::yaml::{self, Kind, Node};
use crate::mapping::{CompiledMapping, MappingSet, Schemas};
use crate::{Diagnostic, Diagnostics};

/// One destination of a matched route.
#[derive(Debug, Clone)]
pub struct RouteTarget {
    pub route_id: String,
    /// Destination system (`lis`, `national-portal`, ...).
    pub system: String,
    pub mapping: Arc<CompiledMapping>,
}

#[derive(Debug)]
struct Route {
    id: String,
    when: Option<Jq>,
    to: Vec<RouteTarget>,
}

/// Every route, indexed by inbound `(system, message_type)`. Immutable once loaded.
#[derive(Debug, Default)]
pub struct Routes {
    by_source: HashMap<(String, String), Vec<Route>>,
    count: usize,
}

impl Routes {
    /// Load and check `routes.yaml` against the loaded mappings (and schemas, when given).
    pub fn load(
        path: &Path,
        mappings: &MappingSet,
        schemas: &dyn Schemas,
    ) -> Result<Routes, Diagnostics> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics(vec![Diagnostic {
                file: file.clone(),
                line: 0,
                column: 0,
                context: String::new(),
                message: format!("cannot read routes file: {e}"),
            }])
        })?;
        Self::parse(&file, &text, mappings, schemas)
    }

    /// Parse routes from text (`file` is used in messages).
    pub fn parse(
        file: &str,
        text: &str,
        mappings: &MappingSet,
        schemas: &dyn Schemas,
    ) -> Result<Routes, Diagnostics> {
        let root = yaml::parse(file, text).map_err(|d| Diagnostics(vec![d]))?;
        let mut diags = Diagnostics::default();
        let mut err = |n: &Node, context: &str, message: String| {
            diags.push(Diagnostic {
                file: file.to_owned(),
                line: n.line,
                column: n.column,
                context: context.to_owned(),
                message,
            })
        };
        let mut routes = Routes::default();
        let list = match (root.as_map(), root.get("routes")) {
            (Some(entries), Some(list)) => {
                for (k, _) in entries {
                    if k.as_str() != Some("routes") {
                        err(
                            k,
                            "",
                            format!(
                                "unknown key '{}' (allowed: routes)",
                                k.scalar_text().unwrap_or_default()
                            ),
                        );
                    }
                }
                list
            }
            _ => {
                err(&root, "", "expected a mapping with a 'routes' list".into());
                return Err(diags);
            }
        };
        let Kind::Seq(items) = &list.kind else {
            err(list, "routes", "routes must be a list".into());
            return Err(diags);
        };
        let mut ids = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let label = match item.get("id").and_then(Node::as_str) {
                Some(id) => format!("routes[{i}] ({id})"),
                None => format!("routes[{i}]"),
            };
            let Some(entries) = item.as_map() else {
                err(
                    item,
                    &label,
                    "a route must be a mapping with id, from, to".into(),
                );
                continue;
            };
            for (k, _) in entries {
                if !matches!(
                    k.as_str(),
                    Some("id" | "from" | "to" | "when" | "description")
                ) {
                    err(
                        k,
                        &label,
                        format!(
                            "unknown key '{}' (allowed: id, from, to, when, description)",
                            k.scalar_text().unwrap_or_default()
                        ),
                    );
                }
            }
            let id = match item.get("id").and_then(Node::as_str) {
                Some(id) if !ids.insert(id.to_owned()) => {
                    err(
                        item.get("id").expect("present"),
                        &label,
                        format!("route id '{id}' is used twice"),
                    );
                    continue;
                }
                Some(id) => id.to_owned(),
                None => {
                    err(item, &label, "missing required key 'id' (a string)".into());
                    continue;
                }
            };
            let from = item.get("from");
            let (fsys, fmt) = match from {
                Some(f) => (
                    f.get("system").and_then(Node::as_str).map(str::to_owned),
                    f.get("message_type")
                        .and_then(Node::as_str)
                        .map(str::to_owned),
                ),
                None => (None, None),
            };
            let (Some(fsys), Some(fmt)) = (fsys, fmt) else {
                err(
                    from.unwrap_or(item),
                    &label,
                    "from needs {system, message_type} (strings)".into(),
                );
                continue;
            };
            if let Some(f) = from {
                for (k, _) in f.as_map().unwrap_or_default() {
                    if !matches!(k.as_str(), Some("system" | "message_type")) {
                        err(k, &label, "from allows only system and message_type".into());
                    }
                }
            }
            if schemas.enabled() && schemas.raw(&format!("{fsys}/{fmt}")).is_none() {
                err(from.expect("present"), &label, format!(
                    "no schema for inbound message type {fsys}/{fmt} (expected schemas/{fsys}/{fmt}.schema.json)"
                ));
            }
            let when = match item.get("when") {
                None => None,
                Some(n) => match n.as_str().map(Jq::compile) {
                    Some(Ok(jq)) => Some(jq),
                    Some(Err(e)) => {
                        err(n, &label, format!("when: {e}"));
                        None
                    }
                    None => {
                        err(n, &label, "when must be a jq expression (a string)".into());
                        None
                    }
                },
            };
            let mut to = Vec::new();
            match item.get("to").map(|t| &t.kind) {
                Some(Kind::Seq(dests)) if !dests.is_empty() => {
                    for (j, d) in dests.iter().enumerate() {
                        let dl = format!("{label}.to[{j}]");
                        for (k, _) in d.as_map().unwrap_or_default() {
                            if !matches!(k.as_str(), Some("system" | "mapping")) {
                                err(
                                    k,
                                    &dl,
                                    "a destination allows only system and mapping".into(),
                                );
                            }
                        }
                        let sys = d.get("system").and_then(Node::as_str);
                        let mid = d.get("mapping").and_then(Node::as_str);
                        let (Some(sys), Some(mid)) = (sys, mid) else {
                            err(
                                d,
                                &dl,
                                "a destination needs {system, mapping} (strings)".into(),
                            );
                            continue;
                        };
                        let mnode = d.get("mapping").expect("present");
                        let Some(m) = mappings.get(mid) else {
                            err(
                                mnode,
                                &dl,
                                format!(
                                    "no mapping with id '{mid}' (expected mappings/{mid}.yaml)"
                                ),
                            );
                            continue;
                        };
                        if m.source.system != fsys || m.source.message_type != fmt {
                            err(
                                mnode,
                                &dl,
                                format!(
                                "mapping '{mid}' reads {}/{}, but this route is from {fsys}/{fmt}",
                                m.source.system, m.source.message_type
                            ),
                            );
                            continue;
                        }
                        if m.target.system != sys {
                            err(
                                d.get("system").expect("present"),
                                &dl,
                                format!(
                                    "mapping '{mid}' writes for system '{}', not '{sys}'",
                                    m.target.system
                                ),
                            );
                            continue;
                        }
                        to.push(RouteTarget {
                            route_id: id.clone(),
                            system: sys.to_owned(),
                            mapping: m,
                        });
                    }
                }
                _ => err(
                    item,
                    &label,
                    "to must be a non-empty list of {system, mapping}".into(),
                ),
            }
            routes.count += 1;
            routes
                .by_source
                .entry((fsys, fmt))
                .or_default()
                .push(Route { id, when, to });
        }
        diags.into_result()?;
        Ok(routes)
    }

    /// Every destination for an inbound message, in file order. A route whose
    /// `when` fails to evaluate (e.g. a type error on an unusual message) does not
    /// match; the failure is logged with the route id.
    pub fn resolve(&self, system: &str, message_type: &str, tree: &Value) -> Vec<RouteTarget> {
        let Some(routes) = self
            .by_source
            .get(&(system.to_owned(), message_type.to_owned()))
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for r in routes {
            if let Some(when) = &r.when {
                match when.test(tree, tree) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(route = %r.id, error = %e, "route condition failed; route skipped");
                        continue;
                    }
                }
            }
            out.extend(r.to.iter().cloned());
        }
        out
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Ids of the routes that send through mapping `mapping_id`, sorted.
    pub fn routes_using(&self, mapping_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_source
            .values()
            .flatten()
            .filter(|r| r.to.iter().any(|t| t.mapping.id == mapping_id))
            .map(|r| r.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Ids of every mapping some route uses.
    pub fn mapping_ids(&self) -> HashSet<String> {
        self.by_source
            .values()
            .flatten()
            .flat_map(|r| r.to.iter().map(|t| t.mapping.id.clone()))
            .collect()
    }
}
