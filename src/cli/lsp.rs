//! `nurture lsp`: the language server on standard input and output
//! (LANGUAGE.md section 14), on `lsp-server` and `lsp-types`, the crates
//! rust-analyzer is built on: a synchronous loop over a stdio connection,
//! no async runtime. This first part publishes the check and lint
//! diagnostics of the whole program an open file belongs to (its folder's
//! `.flow` files, with the unsaved text of open ones), formats a document as
//! `nurture fmt` does, and lists a document's workflows and waits.

mod names;

use crate::ast::{Item, Stmt, StmtKind};
use crate::diagnostic::{Diagnostic, Severity};
use crate::source::{FileId, SourceMap};
use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest,
    References, Rename, Request as _, SemanticTokensFullRequest,
};
use lsp_types::{
    DiagnosticSeverity, DocumentSymbol, DocumentSymbolResponse, InitializeParams, NumberOrString,
    OneOf, Position, PublishDiagnosticsParams, Range, ServerCapabilities, SymbolKind,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit, Uri,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct LspArgs {}

pub fn run(_args: &LspArgs) -> ExitCode {
    let (connection, io) = Connection::stdio();
    let capabilities = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        definition_provider: Some(OneOf::Left(true)),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(lsp_types::CodeActionProviderCapability::Simple(true)),
        semantic_tokens_provider: Some(
            lsp_types::SemanticTokensServerCapabilities::SemanticTokensOptions(
                lsp_types::SemanticTokensOptions {
                    legend: lsp_types::SemanticTokensLegend {
                        token_types: TOKEN_TYPES.to_vec(),
                        token_modifiers: vec![lsp_types::SemanticTokenModifier::DECLARATION],
                    },
                    full: Some(lsp_types::SemanticTokensFullOptions::Bool(true)),
                    ..lsp_types::SemanticTokensOptions::default()
                },
            ),
        ),
        completion_provider: Some(lsp_types::CompletionOptions {
            trigger_characters: Some(vec![".".into()]),
            ..lsp_types::CompletionOptions::default()
        }),
        ..ServerCapabilities::default()
    };
    let caps = serde_json::to_value(capabilities).unwrap_or_default();
    let initialized = match connection.initialize(caps) {
        Ok(params) => serde_json::from_value::<InitializeParams>(params).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = initialized {
        say!("nurture lsp: the editor did not start the session: {e}");
        return ExitCode::from(2);
    }
    let mut server = Server::default();
    let code = match server.serve(&connection) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("nurture lsp: {e}");
            ExitCode::from(2)
        }
    };
    drop(connection);
    let _ = io.join();
    code
}

/// The open documents' unsaved text, by path.
#[derive(Default)]
struct Server {
    open: BTreeMap<PathBuf, String>,
    /// The files each folder's last diagnostics were published for (so a
    /// fixed file gets its diagnostics cleared).
    published: BTreeMap<PathBuf, Vec<PathBuf>>,
    /// Each file's parse, by its text: an edit re-parses the edited file
    /// only; the program is checked whole again.
    parsed: std::cell::RefCell<crate::pipeline::ParseCache>,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

impl Server {
    fn serve(&mut self, c: &Connection) -> Result<(), Failure> {
        for msg in &c.receiver {
            match msg {
                Message::Request(req) => {
                    if c.handle_shutdown(&req)? {
                        return Ok(());
                    }
                    let resp = self.request(req);
                    c.sender.send(Message::Response(resp))?;
                }
                Message::Notification(n) => self.notification(c, n)?,
                Message::Response(_) => {}
            }
        }
        Ok(())
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        match req.method.as_str() {
            Formatting::METHOD => answer(req, |p: lsp_types::DocumentFormattingParams| {
                self.format(&p.text_document.uri)
            }),
            DocumentSymbolRequest::METHOD => answer(req, |p: lsp_types::DocumentSymbolParams| {
                DocumentSymbolResponse::Nested(self.symbols(&p.text_document.uri))
            }),
            GotoDefinition::METHOD => answer(req, |p: lsp_types::GotoDefinitionParams| {
                let at = p.text_document_position_params;
                self.lookup(&at.text_document.uri, at.position)
                    .map(|(loc, _)| lsp_types::GotoDefinitionResponse::Scalar(loc))
            }),
            Completion::METHOD => answer(req, |p: lsp_types::CompletionParams| {
                let at = p.text_document_position;
                lsp_types::CompletionResponse::Array(
                    self.complete(&at.text_document.uri, at.position),
                )
            }),
            HoverRequest::METHOD => answer(req, |p: lsp_types::HoverParams| {
                let at = p.text_document_position_params;
                self.lookup(&at.text_document.uri, at.position)
                    .map(|(_, text)| text)
                    .or_else(|| self.builtin_doc(&at.text_document.uri, at.position))
                    .map(|text| lsp_types::Hover {
                        contents: lsp_types::HoverContents::Markup(lsp_types::MarkupContent {
                            kind: lsp_types::MarkupKind::Markdown,
                            value: format!("```flow\n{text}\n```"),
                        }),
                        range: None,
                    })
            }),
            References::METHOD => answer(req, |p: lsp_types::ReferenceParams| {
                let at = p.text_document_position;
                self.references(
                    &at.text_document.uri,
                    at.position,
                    p.context.include_declaration,
                )
            }),
            Rename::METHOD => {
                let params: Result<lsp_types::RenameParams, _> =
                    serde_json::from_value(req.params.clone());
                match params.map(|p| {
                    let at = p.text_document_position;
                    self.rename(&at.text_document.uri, at.position, &p.new_name)
                }) {
                    Ok(Ok(edit)) => Response::new_ok(id, edit),
                    Ok(Err(why)) => {
                        Response::new_err(id, lsp_server::ErrorCode::InvalidParams as i32, why)
                    }
                    Err(e) => Response::new_err(
                        id,
                        lsp_server::ErrorCode::InvalidParams as i32,
                        e.to_string(),
                    ),
                }
            }
            CodeActionRequest::METHOD => answer(req, |p: lsp_types::CodeActionParams| {
                self.code_actions(&p.text_document.uri, p.range)
            }),
            SemanticTokensFullRequest::METHOD => {
                answer(req, |p: lsp_types::SemanticTokensParams| {
                    lsp_types::SemanticTokensResult::Tokens(
                        self.semantic_tokens(&p.text_document.uri),
                    )
                })
            }
            _ => Response::new_err(
                id,
                lsp_server::ErrorCode::MethodNotFound as i32,
                format!("`{}` is not served", req.method),
            ),
        }
    }

    fn notification(&mut self, c: &Connection, n: Notification) -> Result<(), Failure> {
        let path = match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams = serde_json::from_value(n.params)?;
                let path = path_of(&p.text_document.uri);
                self.open.insert(path.clone(), p.text_document.text);
                path
            }
            DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams = serde_json::from_value(n.params)?;
                let path = path_of(&p.text_document.uri);
                // Full sync: the last change is the whole text.
                if let Some(change) = p.content_changes.into_iter().last() {
                    self.open.insert(path.clone(), change.text);
                }
                path
            }
            DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams = serde_json::from_value(n.params)?;
                let path = path_of(&p.text_document.uri);
                self.open.remove(&path);
                path
            }
            _ => return Ok(()),
        };
        self.publish(c, &path)
    }

    /// The program `path` belongs to: every `.flow` file of its folder,
    /// the open ones as the editor holds them.
    fn program(&self, path: &Path) -> SourceMap {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "flow"))
                    .collect()
            })
            .unwrap_or_default();
        for p in self.open.keys().filter(|p| p.parent() == Some(dir)) {
            if !files.contains(p) {
                files.push(p.clone());
            }
        }
        if !files.contains(&path.to_path_buf()) {
            files.push(path.to_path_buf());
        }
        files.sort();
        let mut sources = SourceMap::default();
        for f in files {
            let text = match self.open.get(&f) {
                Some(t) => t.clone(),
                None => std::fs::read_to_string(&f).unwrap_or_default(),
            };
            sources.add(f.display().to_string(), text);
        }
        sources
    }

    /// Checks and lints the program `path` belongs to, and publishes each
    /// of its files' diagnostics.
    /// The program `path` belongs to, with its check and lint findings.
    fn diagnose(&self, path: &Path) -> (SourceMap, Vec<Diagnostic>) {
        let sources = self.program(path);
        let analysis = {
            let mut cache = self.parsed.borrow_mut();
            // Parses of texts edited away are dropped now and then.
            if cache.len() > 4 * sources.files.len() + 16 {
                *cache = crate::pipeline::ParseCache::default();
            }
            crate::pipeline::analyse_cached(&sources, &mut cache)
        };
        let mut diags = analysis.diagnostics.clone();
        if !diags.iter().any(Diagnostic::is_error) {
            let config = super::lint::config_for(path).unwrap_or_default();
            diags.extend(crate::lint::lint(
                &analysis.program,
                &analysis.checked.schema,
                &sources,
                &config,
            ));
        }
        (sources, diags)
    }

    fn publish(&mut self, c: &Connection, path: &Path) -> Result<(), Failure> {
        let (sources, diags) = self.diagnose(path);
        let mut by_file: BTreeMap<FileId, Vec<lsp_types::Diagnostic>> = BTreeMap::new();
        for d in &diags {
            by_file
                .entry(d.span.file)
                .or_default()
                .push(to_lsp(d, &sources));
        }
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut now = Vec::new();
        for (id, file) in sources.files.iter().enumerate() {
            let p = PathBuf::from(&file.name);
            let list = by_file.remove(&(id as FileId)).unwrap_or_default();
            now.push(p.clone());
            send_diagnostics(c, &p, list)?;
        }
        // Files gone from the folder since: cleared.
        for old in self.published.remove(&dir).unwrap_or_default() {
            if !now.contains(&old) {
                send_diagnostics(c, &old, Vec::new())?;
            }
        }
        self.published.insert(dir, now);
        Ok(())
    }

    /// What a built-in word under `pos` is: a function's signature, a
    /// history predicate's form, a channel.
    fn builtin_doc(&self, uri: &Uri, pos: Position) -> Option<String> {
        let path = path_of(uri);
        let text = match self.open.get(&path) {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(&path).ok()?,
        };
        let offset = offset_of(&text, pos)?;
        let (start, end) = word_at(&text, offset);
        let word = &text[start..end];
        if let Some(b) = crate::vocabulary::Builtin::from_name(word) {
            return Some(b.signature().to_string());
        }
        match word {
            "seen" => Some("seen(EVENT [where COND] [within DURATION]) -> bool".into()),
            "count" => Some("count(EVENT [where COND] [within DURATION]) -> int".into()),
            _ => crate::vocabulary::Channel::ALL
                .iter()
                .find(|c| c.name() == word)
                .map(|c| format!("channel {}: `send {} \"TEMPLATE\"`", c.name(), c.name())),
        }
    }

    /// The program of `uri`, its index of names, the file and the byte
    /// offset of `pos`.
    fn names_at(
        &self,
        uri: &Uri,
        pos: Position,
    ) -> Option<(SourceMap, Vec<names::Occ>, FileId, usize)> {
        let path = path_of(uri);
        let sources = self.program(&path);
        let file = sources
            .files
            .iter()
            .position(|f| Path::new(&f.name) == path)? as FileId;
        let offset = offset_of(&sources.file(file).text, pos)?;
        let (program, _) = crate::syntax::parse_program(&sources);
        let occs = names::index(&sources, &program);
        Some((sources, occs, file, offset))
    }

    /// Every place the name under `pos` stands: its declaration (when
    /// asked) and its uses, across the program's files.
    fn references(&self, uri: &Uri, pos: Position, declaration: bool) -> Vec<lsp_types::Location> {
        let Some((sources, occs, file, offset)) = self.names_at(uri, pos) else {
            return Vec::new();
        };
        let Some(here) = names::at(&occs, file, offset).cloned() else {
            return Vec::new();
        };
        occs.iter()
            .filter(|o| o.kind == here.kind && o.name == here.name && (declaration || !o.decl))
            .map(|o| location(&sources, o.file, o.start, o.end))
            .collect()
    }

    /// Renames the field, event, workflow, template or named wait under
    /// `pos` everywhere it stands.
    // lsp-types' `WorkspaceEdit` keys its changes by `Uri`, whose parsed
    // parts are cached inside: the map is the protocol's, not ours.
    #[allow(clippy::mutable_key_type)]
    fn rename(
        &self,
        uri: &Uri,
        pos: Position,
        new_name: &str,
    ) -> Result<lsp_types::WorkspaceEdit, String> {
        let (sources, occs, file, offset) =
            self.names_at(uri, pos).ok_or("nothing to rename here")?;
        let here = names::at(&occs, file, offset)
            .cloned()
            .ok_or("no field, event, workflow, template or named wait here")?;
        let valid = match here.kind {
            names::Kind::Template => !new_name.is_empty() && !new_name.contains(['"', '\\', '{']),
            _ => {
                let mut chars = new_name.chars();
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !crate::vocabulary::KEYWORDS.contains(&new_name)
            }
        };
        if !valid {
            return Err(format!("`{new_name}` cannot be such a name"));
        }
        let mut changes: std::collections::HashMap<Uri, Vec<TextEdit>> =
            std::collections::HashMap::new();
        for o in occs
            .iter()
            .filter(|o| o.kind == here.kind && o.name == here.name)
        {
            let loc = location(&sources, o.file, o.start, o.end);
            changes
                .entry(loc.uri)
                .or_default()
                .push(TextEdit::new(loc.range, new_name.to_string()));
        }
        Ok(lsp_types::WorkspaceEdit {
            changes: Some(changes),
            ..lsp_types::WorkspaceEdit::default()
        })
    }

    /// Quick fixes for the findings in `range`: the did-you-mean, a lint
    /// suppression, a consent check before a send.
    #[allow(clippy::mutable_key_type)]
    fn code_actions(&self, uri: &Uri, range: Range) -> Vec<lsp_types::CodeActionOrCommand> {
        let path = path_of(uri);
        let (sources, diags) = self.diagnose(&path);
        let Some(file) = sources
            .files
            .iter()
            .position(|f| Path::new(&f.name) == path)
            .map(|f| f as FileId)
        else {
            return Vec::new();
        };
        let text = &sources.file(file).text;
        let (program, _) = crate::syntax::parse_program(&sources);
        let mut actions = Vec::new();
        for d in diags.iter().filter(|d| d.span.file == file) {
            let lsp = to_lsp(d, &sources);
            if lsp.range.end < range.start || range.end < lsp.range.start {
                continue;
            }
            let edit = |title: String, edits: Vec<TextEdit>, preferred: bool| {
                let mut changes = std::collections::HashMap::new();
                changes.insert(uri.clone(), edits);
                lsp_types::CodeActionOrCommand::CodeAction(lsp_types::CodeAction {
                    title,
                    kind: Some(lsp_types::CodeActionKind::QUICKFIX),
                    diagnostics: Some(vec![lsp.clone()]),
                    edit: Some(lsp_types::WorkspaceEdit {
                        changes: Some(changes),
                        ..lsp_types::WorkspaceEdit::default()
                    }),
                    is_preferred: Some(preferred),
                    ..lsp_types::CodeAction::default()
                })
            };
            // The did-you-mean: the word in backticks of the help line.
            let suggestion = d
                .help
                .as_deref()
                .filter(|h| h.contains("did you mean"))
                .or(Some(d.message.as_str()).filter(|m| m.contains("did you mean")))
                .and_then(|h| h.split('`').nth(1));
            if let Some(s) = suggestion {
                let span_text = &text[d.span.range()];
                // The span may hold more than the name (`contact.scor`).
                let (start, end) = match span_text.rfind('.') {
                    Some(dot) if !s.contains('.') => {
                        (d.span.start as usize + dot + 1, d.span.end as usize)
                    }
                    _ => (d.span.start as usize, d.span.end as usize),
                };
                actions.push(edit(
                    format!("Change to `{s}`"),
                    vec![TextEdit::new(
                        Range::new(
                            position(&sources, file, start),
                            position(&sources, file, end),
                        ),
                        s.to_string(),
                    )],
                    true,
                ));
            }
            let code = d.code.as_str();
            if let Some(rule) = code.strip_prefix("nurture::lint::") {
                let line_start = text[..d.span.start as usize]
                    .rfind('\n')
                    .map_or(0, |i| i + 1);
                let indent: String = text[line_start..]
                    .chars()
                    .take_while(|c| *c == ' ' || *c == '\t')
                    .collect();
                let at = position(&sources, file, line_start);
                actions.push(edit(
                    format!("Allow `{rule}` here (// nurture:allow)"),
                    vec![TextEdit::new(
                        Range::new(at, at),
                        format!("{indent}// nurture:allow({rule})\n"),
                    )],
                    false,
                ));
                if rule == "consent" {
                    if let Some(field) = consent_field(&program, text, d) {
                        actions.push(edit(
                            format!("Check consent first (exit unless `contact.{field}`)"),
                            vec![TextEdit::new(
                                Range::new(at, at),
                                format!("{indent}if not contact.{field} {{\n{indent}  exit\n{indent}}}\n"),
                            )],
                            true,
                        ));
                    }
                }
            }
        }
        actions
    }

    /// The semantic tokens of a document: keywords, comments, strings,
    /// numbers and times, and the program's names by what they name.
    fn semantic_tokens(&self, uri: &Uri) -> lsp_types::SemanticTokens {
        let path = path_of(uri);
        let sources = self.program(&path);
        let Some(file) = sources
            .files
            .iter()
            .position(|f| Path::new(&f.name) == path)
            .map(|f| f as FileId)
        else {
            return lsp_types::SemanticTokens::default();
        };
        let (program, _) = crate::syntax::parse_program(&sources);
        let mut data = Vec::new();
        let (mut line, mut col) = (0u32, 0u32);
        for t in names::tokens(&sources, &program, file) {
            let ty = match t.role {
                names::Role::Keyword => 0,
                names::Role::Comment => 1,
                names::Role::Str => 2,
                names::Role::Number => 3,
                names::Role::Name(names::Kind::Field) => 4,
                names::Role::Name(names::Kind::Event) => 5,
                names::Role::Name(names::Kind::Workflow) => 6,
                names::Role::Name(names::Kind::Template) => 2,
                names::Role::Name(names::Kind::Wait(_)) => 7,
                names::Role::Plain => 8,
            };
            // A token never spans lines in the protocol: a comment or a
            // string ends at its line's end.
            let start = position(&sources, file, t.start);
            let text = &sources.file(file).text;
            let line_end = text[t.start..t.end]
                .find('\n')
                .map_or(t.end, |n| t.start + n);
            let length: u32 = text[t.start..line_end]
                .chars()
                .map(|c| c.len_utf16() as u32)
                .sum();
            if length == 0 {
                continue;
            }
            let delta_line = start.line - line;
            let delta_start = if delta_line == 0 {
                start.character - col
            } else {
                start.character
            };
            data.push(lsp_types::SemanticToken {
                delta_line,
                delta_start,
                length,
                token_type: ty,
                token_modifiers_bitset: 0,
            });
            line = start.line;
            col = start.character;
        }
        lsp_types::SemanticTokens {
            result_id: None,
            data,
        }
    }

    /// The declaration of the name under `pos` in the program of `uri`: a
    /// contact field (`contact.F`, or a field's own name), an event, a
    /// workflow. Its place, and its declaration's text for a hover.
    fn lookup(&self, uri: &Uri, pos: Position) -> Option<(lsp_types::Location, String)> {
        let path = path_of(uri);
        let sources = self.program(&path);
        let file = sources
            .files
            .iter()
            .position(|f| Path::new(&f.name) == path)? as FileId;
        let text = &sources.file(file).text;
        let offset = offset_of(text, pos)?;
        let (start, end) = word_at(text, offset);
        let word = &text[start..end];
        if word.is_empty() {
            return None;
        }
        let after_contact = text[..start].ends_with("contact.");
        let (program, _) = crate::syntax::parse_program(&sources);
        let place = |span: crate::source::Span| {
            let file_path = PathBuf::from(&sources.file(span.file).name);
            lsp_types::Location {
                uri: uri_of(&file_path),
                range: Range::new(
                    position(&sources, span.file, span.start as usize),
                    position(&sources, span.file, span.end as usize),
                ),
            }
        };
        let decl_text = |span: crate::source::Span| {
            sources.file(span.file).text[span.range()]
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        };
        for item in &program.items {
            match item {
                Item::Contact(c) => {
                    for f in c.fields.iter().filter(|f| f.name.name == word) {
                        if after_contact || f.name.span.start as usize == start {
                            return Some((place(f.name.span), decl_text(f.span)));
                        }
                    }
                }
                Item::Event(e) if e.name.name == word && !after_contact => {
                    return Some((place(e.name.span), decl_text(e.span)));
                }
                Item::Workflow(w) if w.name.name == word && !after_contact => {
                    return Some((place(w.name.span), format!("workflow {}", w.name.name)));
                }
                _ => {}
            }
        }
        None
    }

    /// What may be written at `pos`: after `contact.` the contact's fields,
    /// after `event.` the events' payload fields, elsewhere the keywords,
    /// channels, built-in functions, events and workflows of the program.
    fn complete(&self, uri: &Uri, pos: Position) -> Vec<lsp_types::CompletionItem> {
        use lsp_types::{CompletionItem, CompletionItemKind};
        let path = path_of(uri);
        let sources = self.program(&path);
        let Some(file) = sources
            .files
            .iter()
            .position(|f| Path::new(&f.name) == path)
        else {
            return Vec::new();
        };
        let text = &sources.file(file as FileId).text;
        let offset = offset_of(text, pos).unwrap_or(text.len());
        let before =
            text[..offset].trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let analysis = crate::pipeline::analyse(&sources);
        let schema = &analysis.checked.schema;
        let item =
            |label: String, kind: CompletionItemKind, detail: Option<String>| CompletionItem {
                label,
                kind: Some(kind),
                detail,
                ..CompletionItem::default()
            };
        if before.ends_with("contact.") {
            return schema
                .fields
                .iter()
                .map(|f| {
                    item(
                        f.name.clone(),
                        CompletionItemKind::FIELD,
                        Some(f.ty.to_string()),
                    )
                })
                .collect();
        }
        if before.ends_with("event.") || before.ends_with("trigger.") {
            let mut out: Vec<CompletionItem> = Vec::new();
            for e in &schema.events {
                for (n, t) in &e.fields {
                    if !out.iter().any(|i| i.label == *n) {
                        let detail = Some(format!("{t} ({})", e.name));
                        out.push(item(n.clone(), CompletionItemKind::FIELD, detail));
                    }
                }
            }
            return out;
        }
        let mut out: Vec<CompletionItem> = crate::vocabulary::KEYWORDS
            .iter()
            .chain(
                [
                    "as",
                    "transactional",
                    "every",
                    "until",
                    "within",
                    "on",
                    "change",
                    "finish",
                ]
                .iter(),
            )
            .map(|k| item(k.to_string(), CompletionItemKind::KEYWORD, None))
            .collect();
        out.extend(crate::vocabulary::Channel::names().map(|c| {
            item(
                c.to_string(),
                CompletionItemKind::CONSTANT,
                Some("channel".into()),
            )
        }));
        out.extend(
            crate::vocabulary::Builtin::ALL
                .iter()
                .map(|b| item(b.name().to_string(), CompletionItemKind::FUNCTION, None)),
        );
        out.extend(schema.events.iter().map(|e| {
            item(
                e.name.clone(),
                CompletionItemKind::EVENT,
                Some("event".into()),
            )
        }));
        out.extend(analysis.program.workflows().map(|w| {
            item(
                w.name.name.clone(),
                CompletionItemKind::FUNCTION,
                Some("workflow".into()),
            )
        }));
        out
    }

    /// The document formatted as `nurture fmt` formats it: one edit over
    /// the whole text (none when it is formatted, or does not parse).
    fn format(&self, uri: &Uri) -> Vec<TextEdit> {
        let path = path_of(uri);
        let Some(text) = self
            .open
            .get(&path)
            .cloned()
            .or_else(|| std::fs::read_to_string(&path).ok())
        else {
            return Vec::new();
        };
        match crate::fmt::format_source(&text) {
            Ok(formatted) if formatted != text => {
                let mut map = SourceMap::default();
                map.add("doc", text.clone());
                let end = position(&map, 0, text.len());
                vec![TextEdit {
                    range: Range::new(Position::new(0, 0), end),
                    new_text: formatted,
                }]
            }
            _ => Vec::new(),
        }
    }

    /// The document's workflows, each with its waits.
    fn symbols(&self, uri: &Uri) -> Vec<DocumentSymbol> {
        let path = path_of(uri);
        let text = self
            .open
            .get(&path)
            .cloned()
            .or_else(|| std::fs::read_to_string(&path).ok())
            .unwrap_or_default();
        let mut map = SourceMap::default();
        map.add("doc", text.clone());
        let (items, _) = crate::syntax::parse_file(0, &text);
        let range = |s: crate::source::Span| {
            Range::new(
                position(&map, 0, s.start as usize),
                position(&map, 0, s.end as usize),
            )
        };
        items
            .iter()
            .filter_map(|item| match item {
                Item::Workflow(w) => {
                    let mut waits = Vec::new();
                    crate::ast::walk::each_stmt(&w.body, &mut |s: &Stmt| {
                        if matches!(s.kind, StmtKind::Wait(_) | StmtKind::WaitFor { .. }) {
                            let first_line = map.file(0).text[s.span.range()]
                                .lines()
                                .next()
                                .unwrap_or("wait")
                                .trim_end_matches('{')
                                .trim()
                                .to_string();
                            let name = s
                                .name
                                .as_ref()
                                .map_or(first_line.clone(), |n| n.name.clone());
                            waits.push(symbol(
                                name,
                                Some(first_line),
                                SymbolKind::EVENT,
                                range(s.span),
                                None,
                            ));
                        }
                    });
                    Some(symbol(
                        w.name.name.clone(),
                        Some("workflow".into()),
                        SymbolKind::FUNCTION,
                        range(w.span),
                        Some(waits),
                    ))
                }
                Item::Event(e) => Some(symbol(
                    e.name.name.clone(),
                    Some("event".into()),
                    SymbolKind::STRUCT,
                    range(e.span),
                    None,
                )),
                _ => None,
            })
            .collect()
    }
}

#[allow(deprecated)]
fn symbol(
    name: String,
    detail: Option<String>,
    kind: SymbolKind,
    range: Range,
    children: Option<Vec<DocumentSymbol>>,
) -> DocumentSymbol {
    DocumentSymbol {
        name,
        detail,
        kind,
        tags: None,
        deprecated: None,
        range,
        selection_range: range,
        children,
    }
}

/// The response to `req`: its parameters read as `P` and `f`'s result, or
/// the protocol's error for parameters that do not read.
fn answer<P: serde::de::DeserializeOwned, R: serde::Serialize>(
    req: Request,
    f: impl FnOnce(P) -> R,
) -> Response {
    match serde_json::from_value::<P>(req.params) {
        Ok(p) => Response::new_ok(req.id, f(p)),
        Err(e) => Response::new_err(
            req.id,
            lsp_server::ErrorCode::InvalidParams as i32,
            e.to_string(),
        ),
    }
}

/// The semantic token types, in the legend's order.
const TOKEN_TYPES: &[lsp_types::SemanticTokenType] = &[
    lsp_types::SemanticTokenType::KEYWORD,
    lsp_types::SemanticTokenType::COMMENT,
    lsp_types::SemanticTokenType::STRING,
    lsp_types::SemanticTokenType::NUMBER,
    lsp_types::SemanticTokenType::PROPERTY,
    lsp_types::SemanticTokenType::EVENT,
    lsp_types::SemanticTokenType::FUNCTION,
    lsp_types::SemanticTokenType::new("label"),
    lsp_types::SemanticTokenType::VARIABLE,
];

/// The word (letters, digits, `_`) around byte `offset`: its start and end.
fn word_at(text: &str, offset: usize) -> (usize, usize) {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = offset
        + text[offset..]
            .find(|c: char| !is_word(c))
            .unwrap_or(text.len() - offset);
    (start, end)
}

/// A span as a protocol location.
fn location(sources: &SourceMap, file: FileId, start: usize, end: usize) -> lsp_types::Location {
    lsp_types::Location {
        uri: uri_of(Path::new(&sources.file(file).name)),
        range: Range::new(position(sources, file, start), position(sources, file, end)),
    }
}

/// The contact field that holds consent for the channel of the `send` a
/// consent finding points at.
fn consent_field(program: &crate::ast::Program, text: &str, d: &Diagnostic) -> Option<String> {
    let line_start = text[..d.span.start as usize]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let channel = line
        .trim_start()
        .strip_prefix("send ")?
        .split_whitespace()
        .next()?
        .to_string();
    program.items.iter().find_map(|item| match item {
        Item::Contact(c) => c.fields.iter().find_map(|f| {
            f.annotations
                .iter()
                .any(|a| a.name.name == "consent" && a.args.iter().any(|x| x.name == channel))
                .then(|| f.name.name.clone())
        }),
        _ => None,
    })
}

fn send_diagnostics(
    c: &Connection,
    path: &Path,
    diagnostics: Vec<lsp_types::Diagnostic>,
) -> Result<(), Failure> {
    let params = PublishDiagnosticsParams {
        uri: uri_of(path),
        diagnostics,
        version: None,
    };
    c.sender.send(Message::Notification(Notification::new(
        PublishDiagnostics::METHOD.to_string(),
        params,
    )))?;
    Ok(())
}

/// A diagnostic as the protocol has it: the range of the offending span,
/// the help line (a did-you-mean) appended to the message.
fn to_lsp(d: &Diagnostic, sources: &SourceMap) -> lsp_types::Diagnostic {
    let file = d.span.file;
    let range = Range::new(
        position(sources, file, d.span.start as usize),
        position(sources, file, d.span.end as usize),
    );
    let message = match &d.help {
        Some(h) => format!("{}\n{h}", d.message),
        None => d.message.clone(),
    };
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        source: Some("nurture".into()),
        message,
        ..lsp_types::Diagnostic::default()
    }
}

/// A byte offset as the protocol's position: a 0-based line and a column
/// in UTF-16 code units.
fn position(sources: &SourceMap, file: FileId, offset: usize) -> Position {
    let text = &sources.file(file).text;
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column: usize = text[line_start..offset].chars().map(char::len_utf16).sum();
    Position::new(line as u32, column as u32)
}

/// A protocol position (UTF-16 columns) as a byte offset in `text`.
fn offset_of(text: &str, pos: Position) -> Option<usize> {
    let mut line_start = 0;
    for _ in 0..pos.line {
        line_start += text[line_start..].find('\n')? + 1;
    }
    let line = &text[line_start..];
    let mut units = 0;
    for (i, c) in line.char_indices() {
        if units >= pos.character as usize || c == '\n' {
            return Some(line_start + i);
        }
        units += c.len_utf16();
    }
    Some(line_start + line.len())
}

fn path_of(uri: &Uri) -> PathBuf {
    let s = uri.as_str();
    let p = s.strip_prefix("file://").unwrap_or(s);
    PathBuf::from(percent_decode(p))
}

fn uri_of(path: &Path) -> Uri {
    let text = format!("file://{}", percent_encode(&path.display().to_string()));
    text.parse()
        .unwrap_or_else(|_| "file:///".parse().expect("a URI"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
