//! Diagnostics shared by every pass: severity, stable codes, and rendering
//! for people (miette) and for machines (JSON).

mod code;

pub use code::Code;

use crate::source::{SourceFile, SourceMap, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A kind of name a program can get wrong, for [`Diagnostic::unknown`].
pub struct Unknown {
    pub code: Code,
    /// The message, before the name: "unknown event".
    pub message: &'static str,
    pub label: &'static str,
    /// What the candidates are, in "the known events are ...".
    pub what: &'static str,
}

/// One problem found in a program.
///
/// Messages are lowercase without a final period, with user input in
/// backticks; a second sentence goes into `help`.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Stable code such as `nurture::syntax::unterminated-string`.
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    /// Text shown under the primary span.
    pub label: Option<String>,
    pub help: Option<String>,
    /// Secondary spans in the same file, with their labels.
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            label: None,
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    /// An unknown name of some kind: its message and label, with a help
    /// line that names the closest of `candidates` ("did you mean") or
    /// lists those that exist.
    pub fn unknown<'a>(
        kind: &Unknown,
        name: &str,
        span: Span,
        candidates: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Diagnostic {
        Diagnostic::error(kind.code, span, format!("{} `{name}`", kind.message))
            .with_label(kind.label)
            .with_help(crate::suggest::help(name, candidates, kind.what))
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// A miette report of this diagnostic against its source file.
    pub fn report<'a>(&'a self, sources: &'a SourceMap) -> Report<'a> {
        Report {
            diag: self,
            source: FileSource(sources.file(self.span.file)),
        }
    }

    /// Renders for a person: without colour when `color` is false, at `width` columns.
    /// A span on a line too long to show is rendered without the source line.
    pub fn render(&self, sources: &SourceMap, color: bool, width: usize) -> String {
        let file = sources.file(self.span.file);
        let too_long = std::iter::once(self.span)
            .chain(self.related.iter().map(|(s, _)| *s))
            .any(|s| file.line_at(s.start as usize).len() > MAX_SHOWN_LINE);
        if too_long {
            return self.render_plain(sources);
        }
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        // Lines wrap between words only: a rule name such as
        // `unused-declarations` is never cut at its hyphen.
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(width)
            .with_links(false)
            .with_word_splitter(textwrap::WordSplitter::NoHyphenation);
        let mut out = String::new();
        if handler
            .render_report(&mut out, &self.report(sources))
            .is_err()
        {
            out = format!("{}: {}\n", sources.location(self.span), self.message);
        }
        out
    }

    /// The diagnostic without its source line: for lines too long to show.
    fn render_plain(&self, sources: &SourceMap) -> String {
        let mut out = format!(
            "{}[{}]: {}\n  --> {} (the line is too long to show)\n",
            self.severity.as_str(),
            self.code,
            self.message,
            sources.location(self.span)
        );
        if let Some(label) = &self.label {
            out.push_str(&format!("  here: {label}\n"));
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("  help: {help}\n"));
        }
        out
    }

    /// One JSON object: file, line, column, end_line, end_column (of the
    /// last character), code, severity, message (and help when present).
    pub fn to_json(&self, sources: &SourceMap) -> serde_json::Value {
        let file = sources.file(self.span.file);
        let (line, column) = file.line_col(self.span.start as usize);
        let last = (self.span.end as usize).max(self.span.start as usize + 1) - 1;
        let (end_line, end_column) = file.line_col(last.max(self.span.start as usize));
        let mut v = serde_json::json!({
            "file": file.name,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "code": self.code.as_str(),
            "severity": self.severity.as_str(),
            "message": self.message,
        });
        if let Some(help) = &self.help {
            v["help"] = serde_json::Value::String(help.clone());
        }
        v
    }
}

/// Lines longer than this (in bytes) are not shown under a diagnostic:
/// the renderer cannot place a label past column 65535, and nobody reads it.
const MAX_SHOWN_LINE: usize = 4096;

/// Sorts diagnostics by file and position, keeping the order of equal ones.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.span.file, d.span.start));
}

/// A [`Diagnostic`] paired with its source, for miette.
pub struct Report<'a> {
    diag: &'a Diagnostic,
    source: FileSource<'a>,
}

/// A source file as miette reads it: only the lines around a span are
/// handed over (found with the file's line index), so rendering a
/// diagnostic costs the size of its snippet, not of the file.
struct FileSource<'a>(&'a SourceFile);

impl miette::SourceCode for FileSource<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let file = self.0;
        let (first_line, window) =
            file.window(span.offset(), span.offset() + span.len(), before, after);
        let base = window.start;
        let bytes = &file.text.as_bytes()[window];
        let local = miette::SourceSpan::new((span.offset() - base).into(), span.len());
        let inner = bytes.read_span(&local, before, after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            file.name.clone(),
            inner.data(),
            miette::SourceSpan::new((inner.span().offset() + base).into(), inner.span().len()),
            inner.line() + first_line,
            inner.column(),
            // miette counts the lines from the start of its input to the
            // end of the snippet, and compares that count across labels.
            inner.line_count() + first_line,
        )))
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diag, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(&self.diag.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let d = self.diag;
        let primary = LabeledSpan::new_primary_with_span(d.label.clone(), to_miette(d.span));
        let related = d
            .related
            .iter()
            .filter(|(s, _)| s.file == d.span.file)
            .map(|(s, l)| LabeledSpan::new_with_span(Some(l.clone()), to_miette(*s)));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

fn to_miette(span: Span) -> miette::SourceSpan {
    (span.start as usize, (span.end - span.start) as usize).into()
}
