//! Every path a mapping names stays inside the mappings folder.
//!
//! A mapping names files: lookup tables (`lookups: {x: {file: ...}}`) and the
//! inputs of its test cases (`input_file:`). Their contents come back to
//! whoever compiles the mapping: a lookup's values in a preview or a test
//! diff, a file's first bad line in a parse error. Mappings are uploaded
//! through the admin API by auditors and administrators, so a mapping that
//! named `/proc/self/environ` or `../../etc/shadow` would read the hub's
//! machine for them. Hence one rule, applied by [`confine`] wherever such a
//! path is resolved (the API's gate, the file watcher and the CLI all compile
//! through `compile::compile`):
//!
//! * the path must be relative (no leading `/`, no drive); a `..` is resolved
//!   on the text first, and the result must still be inside the folder (so a
//!   path that leaves it is refused whether or not its target exists: no
//!   probing for files);
//! * after following symbolic links (`canonicalize`) it must still be inside
//!   the canonical mappings folder.
//!
//! Error texts name paths relative to the mappings folder ([`shown`]), never
//! the server's absolute paths.

use std::path::{Component, Path, PathBuf};

/// Resolves `rel` against `dir` (itself inside `root`). `Ok(None)`: no such
/// file there. `Err`: the path is not allowed, whether or not it exists.
pub fn confine(root: &Path, dir: &Path, rel: &str) -> Result<Option<PathBuf>, String> {
    let refused = || {
        format!(
            "`{rel}` is not allowed: files a mapping names must be inside the mappings folder; \
             write a path relative to the mapping file that stays inside it (no leading `/`)"
        )
    };
    let given = Path::new(rel);
    if rel.trim().is_empty()
        || given
            .components()
            .any(|c| matches!(c, Component::RootDir | Component::Prefix(_)))
    {
        return Err(refused());
    }
    // `..` is resolved on the text first, so a path that leaves the folder is
    // refused whether or not its target exists (no probing for files).
    // Both folders exist; comparing their canonical forms makes `./mappings`
    // and `mappings`, or a symlinked checkout, the same folder.
    let (Ok(root), Ok(dir)) = (root.canonicalize(), dir.canonicalize()) else {
        return Ok(None);
    };
    let mut lexical = dir.clone();
    for c in given.components() {
        match c {
            Component::ParentDir => {
                // Climbing above `/` would leave the folder in any case.
                if lexical.parent().is_none() {
                    return Err(refused());
                }
                lexical.pop();
            }
            Component::Normal(n) => lexical.push(n),
            _ => {}
        }
    }
    if !lexical.starts_with(&root) {
        return Err(refused());
    }
    if !lexical.is_file() {
        return Ok(None);
    }
    let Ok(real) = lexical.canonicalize() else {
        return Ok(None);
    };
    if !real.starts_with(&root) {
        return Err(format!(
            "`{rel}` leads outside the mappings folder (through a symbolic link); \
             copy the file into the mappings folder instead"
        ));
    }
    Ok(Some(lexical))
}

/// `path` as the messages show it: relative to the mappings folder when it is
/// inside it, else only its file name.
pub fn shown(root: &Path, path: &Path) -> String {
    if let Ok(rel) = path.strip_prefix(root) {
        return rel.to_string_lossy().replace('\\', "/");
    }
    if let (Ok(p), Ok(r)) = (path.canonicalize(), root.canonicalize()) {
        if let Ok(rel) = p.strip_prefix(&r) {
            return rel.to_string_lossy().replace('\\', "/");
        }
    }
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_inside_the_root() {
        let root = tempfile_dir();
        std::fs::create_dir_all(root.join("lookups")).unwrap();
        std::fs::write(root.join("lookups/a.yaml"), "x: y\n").unwrap();
        assert_eq!(
            confine(&root, &root, "lookups/a.yaml").unwrap(),
            Some(root.canonicalize().unwrap().join("lookups/a.yaml"))
        );
        assert_eq!(confine(&root, &root, "lookups/none.yaml").unwrap(), None);
        for bad in [
            "/etc/passwd",
            "../x.yaml",
            "lookups/../../x",
            "/proc/self/environ",
            "",
        ] {
            assert!(confine(&root, &root, bad).is_err(), "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", root.join("lookups/link.yaml")).unwrap();
            let e = confine(&root, &root, "lookups/link.yaml").unwrap_err();
            assert!(e.contains("outside"), "{e}");
        }
        assert_eq!(shown(&root, &root.join("lookups/a.yaml")), "lookups/a.yaml");
        assert_eq!(shown(&root, Path::new("/etc/passwd")), "passwd");
        let _ = std::fs::remove_dir_all(&root);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "lienthong-paths-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
