//! Source files and byte spans into them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in a [`SourceMap`].
pub type FileId = u16;

/// A byte range in one source file.
///
/// Spans compare equal to each other whatever they cover, so that two ASTs
/// that differ only in layout compare equal.
#[derive(Clone, Copy, Default, Eq)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl PartialEq for Span {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Whether two spans cover the same bytes (`==` ignores positions).
    pub fn same_place(&self, other: Span) -> bool {
        (self.file, self.start, self.end) == (other.file, other.start, other.end)
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One named source text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    /// The byte offset of each line's start, so positions are found by a
    /// binary search, not by reading the text again.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let col = self.text[start..offset].chars().count() + 1;
        (line, col)
    }

    /// The text of line `n` (1-based), without its newline.
    pub fn line(&self, n: usize) -> Option<&str> {
        let start = *self.line_starts.get(n.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(n)
            .map_or(self.text.len(), |next| next - 1);
        Some(&self.text[start..end])
    }

    /// The whole lines around `start..end`, `before` lines before and
    /// `after` after: the 0-based number of the first and the byte range.
    pub fn window(
        &self,
        start: usize,
        end: usize,
        before: usize,
        after: usize,
    ) -> (usize, std::ops::Range<usize>) {
        let (first, _) = self.line_col(start);
        let (last, _) = self.line_col(end);
        let first = first.saturating_sub(before + 1).max(1);
        let last = (last + after + 1).min(self.line_starts.len());
        let from = self.line_starts[first - 1];
        let to = self
            .line_starts
            .get(last)
            .copied()
            .unwrap_or(self.text.len());
        (first - 1, from..to)
    }

    /// The text of the line holding a byte offset, without its newline.
    pub fn line_at(&self, offset: usize) -> &str {
        let (line, _) = self.line_col(offset);
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        &self.text[start..end]
    }
}

/// All the files of one program, indexed by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    pub files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile::new(name, text));
        (self.files.len() - 1) as FileId
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id as usize]
    }

    /// `file:line:column` of a span's start.
    pub fn location(&self, span: Span) -> String {
        let f = self.file(span.file);
        let (line, col) = f.line_col(span.start as usize);
        format!("{}:{}:{}", f.name, line, col)
    }
}

// Reading a program from a file or a directory.

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
        let bytes = std::fs::read(&f).map_err(|e| format!("cannot read `{}`: {e}", f.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let good = &e.as_bytes()[..at];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let col = good.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            format!(
                "`{}` is not UTF-8 text: invalid byte at line {line}, column {col} (byte {})",
                f.display(),
                at + 1
            )
        })?;
        // A byte-order mark at the start is not part of the program.
        let text = text
            .strip_prefix('\u{feff}')
            .map_or(text.clone(), str::to_string);
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
