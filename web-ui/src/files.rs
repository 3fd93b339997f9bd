//! Project files of the `--projects` folder this process watches: found by project name and
//! written back when a project is saved in the editor.
//!
//! The folder's watcher (in the `spindle` binary) loads a changed file into the store; the
//! editor saves the store too, so the change shows at once and the watcher, finding the same
//! text stored, leaves it be. A file is replaced atomically (written beside it, then renamed),
//! so the watcher never reads half a file.

use std::path::{Path, PathBuf};

/// The file in `dir` whose `name` key is `project`, if any.
pub(crate) fn file_of(dir: &Path, project: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some("toml"))
        .find(|path| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|text| name_in(&text))
                .is_some_and(|name| name == project)
        })
}

/// The `name` key of a project file, read without checking the rest.
fn name_in(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    table.get("name")?.as_str().map(str::to_string)
}

/// Replaces `path`'s content with `text` atomically.
pub(crate) fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.saving"));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_by_project_name_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.toml"), "name = \"alpha\"\n").expect("write");
        std::fs::write(dir.path().join("b.toml"), "name = \"beta\"\n[broken\n").expect("write");
        std::fs::write(dir.path().join("c.txt"), "name = \"gamma\"\n").expect("write");
        let alpha = file_of(dir.path(), "alpha").expect("found");
        assert!(alpha.ends_with("a.toml"));
        assert_eq!(
            file_of(dir.path(), "beta"),
            None,
            "an unreadable file names nothing"
        );
        assert_eq!(file_of(dir.path(), "gamma"), None, "only .toml files");
        write(&alpha, "name = \"alpha\"\nrate = 2\n").expect("save");
        assert_eq!(
            std::fs::read_to_string(&alpha).expect("read"),
            "name = \"alpha\"\nrate = 2\n"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .collect();
        assert_eq!(names.len(), 3, "no temporary file left behind");
    }
}
