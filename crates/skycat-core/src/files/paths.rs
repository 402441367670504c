//! Expanding a foreign table's `files` glob under its server's `root`.
//!
//! The security rule (SQL-API section 5): a glob may only name files below `root`. Patterns
//! that are absolute or contain a `..` component are refused when the table is created; a
//! match that resolves outside `root` through a symlink is refused when it is read.

use super::{io_error, FilesError, FilesResult};
use std::path::{Component, Path, PathBuf};

/// One file matched by a table's glob.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchedFile {
    /// Path relative to the root, with `/` separators (what users see in EXPLAIN and errors).
    pub relative: String,
    /// The path to open (root joined with `relative`, not canonicalised).
    pub absolute: PathBuf,
    /// Hive-style `key=value` directory components of `relative`, outermost first.
    pub partitions: Vec<(String, String)>,
}

impl MatchedFile {
    /// The value of the hive-style key named like `column` in this file's path (the innermost
    /// one when a key repeats; names compare exactly, then ignoring ASCII case, as PostgreSQL
    /// folds unquoted identifiers), or None when no directory names it.
    pub fn partition_value(&self, column: &str) -> Option<&str> {
        let find =
            |eq: &dyn Fn(&str) -> bool| self.partitions.iter().rev().find(|(k, _)| eq(k)).map(|(_, v)| v.as_str());
        find(&|k| k == column).or_else(|| find(&|k| k.eq_ignore_ascii_case(column)))
    }
}

/// Checks a `files` glob without touching the file system: non-empty, relative, no `..`
/// component, valid glob syntax.
pub fn check_pattern(pattern: &str) -> FilesResult<()> {
    if pattern.trim().is_empty() {
        return Err(FilesError::InvalidPattern("option \"files\" must not be empty".into()));
    }
    if pattern.contains('\0') {
        return Err(FilesError::InvalidPattern("option \"files\" contains a NUL byte".into()));
    }
    if Path::new(pattern).is_absolute() {
        return Err(FilesError::InvalidPattern(format!(
            "option \"files\" must be relative to the server's root, got \"{pattern}\""
        )));
    }
    if pattern.split('/').any(|c| c == "..") {
        return Err(FilesError::InvalidPattern(format!("option \"files\" must not contain \"..\", got \"{pattern}\"")));
    }
    glob::Pattern::new(pattern).map_err(|e| {
        FilesError::InvalidPattern(format!("option \"files\" is not a valid glob (\"{pattern}\"): {e}"))
    })?;
    Ok(())
}

/// Checks a server `root`: an absolute path without `..` components.
pub fn check_root(root: &str) -> FilesResult<()> {
    let p = Path::new(root);
    if !p.is_absolute() {
        return Err(FilesError::InvalidPattern(format!("option \"root\" must be an absolute path, got \"{root}\"")));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(FilesError::InvalidPattern(format!("option \"root\" must not contain \"..\", got \"{root}\"")));
    }
    Ok(())
}

/// Expands `pattern` under `root`, sorted by relative path. Every match is checked to
/// resolve (after symlinks) inside the canonical root; directories are skipped.
pub fn expand(root: &str, pattern: &str) -> FilesResult<Vec<MatchedFile>> {
    check_root(root)?;
    check_pattern(pattern)?;
    let root_path = Path::new(root);
    let canonical_root = root_path.canonicalize().map_err(|e| io_error(root_path, &e))?;
    // The root may itself contain glob metacharacters: escape it, glob only the pattern.
    let full = format!("{}/{}", glob::Pattern::escape(&canonical_root.to_string_lossy()), pattern);
    let options =
        glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: true };
    let entries = glob::glob_with(&full, options)
        .map_err(|e| FilesError::InvalidPattern(format!("option \"files\" is not a valid glob: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(e.path(), e.error()))?;
        let resolved = path.canonicalize().map_err(|e| io_error(&path, &e))?;
        let relative = match path.strip_prefix(&canonical_root) {
            Ok(r) if resolved.starts_with(&canonical_root) => r.to_string_lossy().into_owned(),
            _ => return Err(FilesError::OutsideRoot { path: path.display().to_string() }),
        };
        // stat, not open: never blocks, even on a FIFO.
        let meta = std::fs::metadata(&resolved).map_err(|e| io_error(&path, &e))?;
        if meta.is_dir() {
            continue;
        }
        if !meta.is_file() {
            return Err(FilesError::Io {
                path: path.display().to_string(),
                message: "not a regular file (a FIFO, socket or device matches the pattern)".into(),
                not_found: false,
            });
        }
        files.push(MatchedFile { partitions: hive_partitions(&relative), relative, absolute: path });
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

/// The `key=value` directory components of a relative path (not the file name), e.g.
/// `tract=123/band=r/x.parquet` → `[("tract","123"), ("band","r")]`.
pub fn hive_partitions(relative: &str) -> Vec<(String, String)> {
    let mut parts: Vec<&str> = relative.split('/').collect();
    parts.pop(); // the file name itself is not a partition
    parts
        .into_iter()
        .filter_map(|c| {
            let (k, v) = c.split_once('=')?;
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Checks an output path of `write_parquet`: absolute, no `..`, not a directory.
pub fn check_output_path(path: &str) -> FilesResult<()> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(FilesError::InvalidPattern(format!(
            "relative path \"{path}\" not allowed: write_parquet needs an absolute server path"
        )));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(FilesError::InvalidPattern(format!("path \"{path}\" must not contain \"..\"")));
    }
    if path.ends_with('/') || p.is_dir() {
        return Err(FilesError::InvalidPattern(format!("path \"{path}\" is a directory")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn patterns_that_leave_the_root_are_refused() {
        assert!(check_pattern("tract=*/a.parquet").is_ok());
        assert!(check_pattern("../x.parquet").is_err());
        assert!(check_pattern("a/../../x.parquet").is_err());
        assert!(check_pattern("/etc/passwd").is_err());
        assert!(check_pattern("").is_err());
        assert!(check_pattern("a/[").is_err());
        assert!(check_root("relative/dir").is_err());
        assert!(check_root("/data/../etc").is_err());
        assert!(check_output_path("out.parquet").is_err());
        assert!(check_output_path("/tmp/../etc/x").is_err());
    }

    #[test]
    fn hive_values_come_from_directories_only() {
        assert_eq!(
            hive_partitions("tract=123/band=r/x=1.parquet"),
            vec![("tract".to_string(), "123".to_string()), ("band".to_string(), "r".to_string())]
        );
        assert!(hive_partitions("plain/file.parquet").is_empty());
    }

    #[test]
    fn expansion_is_sorted_and_symlinks_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path();
        for t in ["tract=2", "tract=10", "tract=1"] {
            fs::create_dir(root.join(t)).unwrap();
            fs::write(root.join(t).join("a.parquet"), b"x").unwrap();
        }
        fs::write(root.join("tract=1").join("b.csv"), b"x").unwrap();
        let got = expand(root.to_str().unwrap(), "tract=*/*.parquet").unwrap();
        let names: Vec<_> = got.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["tract=1/a.parquet", "tract=10/a.parquet", "tract=2/a.parquet"]);
        assert_eq!(got[1].partitions, vec![("tract".to_string(), "10".to_string())]);

        // A symlink inside root that points inside root is fine ...
        std::os::unix::fs::symlink(root.join("tract=1/a.parquet"), root.join("tract=2/link.parquet")).unwrap();
        assert_eq!(expand(root.to_str().unwrap(), "tract=2/*.parquet").unwrap().len(), 2);
        // ... one that leads outside is refused, as is a symlinked directory.
        fs::write(outside.path().join("secret.parquet"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.parquet"), root.join("evil.parquet")).unwrap();
        assert!(matches!(expand(root.to_str().unwrap(), "*.parquet"), Err(FilesError::OutsideRoot { .. })));
        std::os::unix::fs::symlink(outside.path(), root.join("tract=99")).unwrap();
        assert!(matches!(expand(root.to_str().unwrap(), "tract=9*/*.parquet"), Err(FilesError::OutsideRoot { .. })));
        // A missing root is an I/O error naming it.
        assert!(matches!(expand("/nonexistent/skycat/root", "*.parquet"), Err(FilesError::Io { not_found: true, .. })));
    }

    #[test]
    fn partition_values_by_column_name() {
        let f = MatchedFile {
            relative: "tract=12/Band=r/tract=13/x.parquet".into(),
            absolute: PathBuf::from("/r/tract=12/Band=r/tract=13/x.parquet"),
            partitions: hive_partitions("tract=12/Band=r/tract=13/x.parquet"),
        };
        assert_eq!(f.partition_value("tract"), Some("13"), "the innermost of a repeated key");
        assert_eq!(f.partition_value("band"), Some("r"), "case-insensitive as a fallback");
        assert_eq!(f.partition_value("Band"), Some("r"));
        assert_eq!(f.partition_value("visit"), None);
        assert_eq!(f.partition_value("x.parquet"), None, "the file name is not a partition");
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.parquet"), b"x").unwrap();
        let fifo = root.join("fifo.parquet");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // Expanding stats the match (never opens it) and names it.
        match expand(root.to_str().unwrap(), "*.parquet") {
            Err(FilesError::Io { path, message, .. }) => {
                assert!(path.ends_with("fifo.parquet") && message.contains("not a regular file"), "{path}: {message}")
            }
            other => panic!("{other:?}"),
        }
        // Opening it directly returns at once with an error instead of waiting for a writer.
        let e = crate::files::reader::open_regular(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(crate::files::reader::open_regular(std::path::Path::new("/dev/zero")).is_err());
        assert!(crate::files::reader::open_regular(&root.join("a.parquet")).is_ok());
    }
}
