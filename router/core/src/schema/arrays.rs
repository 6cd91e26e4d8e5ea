//! Deriving [`ArrayPaths`] from a schema: which XML elements are lists.
//!
//! The XML decoder cannot know that a lone `<TepDinhKem>` is a list of one; the schema
//! can (`"type": "array"`). This walks the schema the way an instance would be walked:
//! `properties` step one element down, `items`/`prefixItems` stay on the same element
//! (in XML a list item *is* the repeated element), and `$ref` into the same file
//! (`#/$defs/...`), `allOf`/`anyOf`/`oneOf` and `if`/`then`/`else` are followed on the
//! same element (best effort: a path that is an array in any branch counts as an
//! array). A schema without `type` but with `items` or `prefixItems` counts as an array.
//! Keys starting with `@` (attributes) or `#` are skipped: they are never elements.
//!
//! The walk is bounded (a `$ref` is not re-entered on the same element, so a recursive
//! schema unrolls one level per element down to [`limits::MAX_DEPTH`], and the total
//! number of visited nodes is capped), so a pathological schema cannot hang the loader.

use serde_json::Value;

use super::ArrayPaths;
use crate::limits;

const MAX_NODES: usize = 100_000;

/// The array paths of a schema (relative to the instance root).
pub fn derive(root: &Value) -> ArrayPaths {
    let mut walk = Walk {
        root,
        out: ArrayPaths::new(),
        refs: Vec::new(),
        budget: MAX_NODES,
    };
    walk.node(root, &mut Vec::new());
    walk.out
}

struct Walk<'a> {
    root: &'a Value,
    out: ArrayPaths,
    /// `$ref`s being followed along the current chain, with the path length at entry.
    refs: Vec<(&'a str, usize)>,
    budget: usize,
}

impl<'a> Walk<'a> {
    fn node(&mut self, node: &'a Value, path: &mut Vec<&'a str>) {
        let Some(obj) = node.as_object() else { return };
        if self.budget == 0 || path.len() > limits::MAX_DEPTH {
            return;
        }
        self.budget -= 1;

        if let Some(Value::String(r)) = obj.get("$ref") {
            if let Some(pointer) = r.strip_prefix('#') {
                // Re-entering the same $ref without having moved down is a cycle.
                if !self.refs.contains(&(r.as_str(), path.len())) {
                    if let Some(target) = self.root.pointer(pointer) {
                        self.refs.push((r, path.len()));
                        self.node(target, path);
                        self.refs.pop();
                    }
                }
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = obj.get(key) {
                for branch in branches {
                    self.node(branch, path);
                }
            }
        }
        for key in ["then", "else"] {
            if let Some(branch) = obj.get(key) {
                self.node(branch, path);
            }
        }

        let typed_array = match obj.get("type") {
            Some(Value::String(t)) => t == "array",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
            _ => false,
        };
        let untyped_array = obj.get("type").is_none()
            && (obj.contains_key("items") || obj.contains_key("prefixItems"));
        if (typed_array || untyped_array) && !path.is_empty() {
            self.out.insert(path);
        }
        if let Some(items) = obj.get("items") {
            self.node(items, path);
        }
        if let Some(Value::Array(items)) = obj.get("prefixItems") {
            for item in items {
                self.node(item, path);
            }
        }
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (name, sub) in props {
                if name.starts_with('@') || name.starts_with('#') {
                    continue;
                }
                path.push(name);
                self.node(sub, path);
                path.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn follows_properties_items_refs_and_combinators() {
        let schema = json!({
            "type": "object",
            "properties": {
                "@id": {"type": "array"},
                "TaiLieu": {"type": "object", "properties": {"TepDinhKem": {"type": "array", "items": {"$ref": "#/$defs/tep"}}}},
                "Dong": {"type": ["array", "null"], "items": {"type": "object", "properties": {"O": {"items": {}}}}},
                "Ben": {"allOf": [{"$ref": "#/$defs/ben"}]},
                "Cay": {"$ref": "#/$defs/cay"},
                "Ten": {"type": "string"}
            },
            "$defs": {
                "tep": {"type": "object", "properties": {"Trang": {"type": "array"}}},
                "ben": {"oneOf": [{"type": "object", "properties": {"Nguoi": {"type": "array"}}}]},
                "cay": {"type": "object", "properties": {"Con": {"type": "array", "items": {"$ref": "#/$defs/cay"}}}}
            }
        });
        let paths = derive(&schema);
        let got: Vec<&str> = paths
            .iter()
            .filter(|p| !p.starts_with("Cay/Con/Con"))
            .collect();
        assert_eq!(
            got,
            [
                "Ben/Nguoi",
                "Cay/Con",
                "Dong",
                "Dong/O",
                "TaiLieu/TepDinhKem",
                "TaiLieu/TepDinhKem/Trang"
            ]
        );
        // The recursive definition unrolls, bounded by the depth limit.
        assert!(paths.contains("Cay/Con/Con/Con"));
        assert!(paths.len() < 100);
        // A $ref cycle that does not move down terminates.
        let cyclic = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
                            "properties": {"X": {"$ref": "#/$defs/a"}}});
        assert!(derive(&cyclic).is_empty());
    }
}
