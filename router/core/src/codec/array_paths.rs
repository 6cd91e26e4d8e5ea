//! Which XML elements are lists even when they occur once.
//!
//! XML has no arrays: a list is just the same element repeated. A decoder that only
//! looks at the document turns two `<ROW_SOTHUE>` into an array but one `<ROW_SOTHUE>`
//! into an object, and every mapping rule would then need two cases. The schema knows
//! better (`"type": "array"`), so [`crate::schema`] derives an [`ArrayPaths`] from it and
//! the XML decoder consults it.
//!
//! A path is the sequence of element names from just below the document element,
//! ignoring array indices, written with `/` (a character XML names cannot contain):
//! `BODY/ROW/SOTHUE/TONG_TIEN/ROW_SOTHUE`. Names keep their prefix as written
//! (`ns1:Item`), matching the tree convention in [`super::xml`].

use std::collections::BTreeSet;

/// A set of element paths whose tree value is always an array.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrayPaths {
    paths: BTreeSet<String>,
}

impl ArrayPaths {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a path given as its element names (`["BODY", "ROW"]`).
    pub fn insert<S: AsRef<str>>(&mut self, segments: &[S]) {
        let joined = segments
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join("/");
        self.paths.insert(joined);
    }

    /// Adds a path written with `/` (`"BODY/ROW"`).
    pub fn insert_joined(&mut self, path: impl Into<String>) {
        self.paths.insert(path.into());
    }

    /// Is the element at this `/`-joined path an array?
    pub fn contains(&self, joined: &str) -> bool {
        self.paths.contains(joined)
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The paths, `/`-joined, in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(String::as_str)
    }
}

impl<S: Into<String>> FromIterator<S> for ArrayPaths {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        ArrayPaths {
            paths: iter.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_contains() {
        let mut p = ArrayPaths::new();
        p.insert(&["BODY", "ROW"]);
        p.insert_joined("TaiLieu/TepDinhKem");
        assert!(p.contains("BODY/ROW"));
        assert!(p.contains("TaiLieu/TepDinhKem"));
        assert!(!p.contains("BODY"));
        assert_eq!(p.len(), 2);
        let q: ArrayPaths = ["BODY/ROW", "TaiLieu/TepDinhKem"].into_iter().collect();
        assert_eq!(p, q);
    }
}
