//! Reading a program from a file or a directory.

use crate::source::SourceMap;
use std::path::{Path, PathBuf};

/// Reads a `.flow` file, or every `*.flow` under a directory (sorted by path).
pub fn load_sources(path: &Path) -> Result<SourceMap, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        collect(path, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(format!("no `.flow` files in `{}`", path.display()));
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut sources = SourceMap::default();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| format!("cannot read `{}`: {e}", f.display()))?;
        sources.add(f.display().to_string(), text);
    }
    Ok(sources)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "flow") {
            out.push(path);
        }
    }
    Ok(())
}
