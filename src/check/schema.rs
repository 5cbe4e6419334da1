//! Symbol tables: contact fields and events, resolved from the declarations.

use super::types::Type;
use super::unknown;
use crate::ast::{self, ContactBlock, EventDecl, Expr, ExprKind, TypeExpr, TypeKind};
use crate::diagnostic::Code;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::suggest;
use crate::vocabulary::Channel;
use rustc_hash::FxHashMap;

/// One contact attribute.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    /// The declared default (a constant expression), if any.
    pub default: Option<Expr>,
    /// The channel this field is the address for (`@channel(c)`).
    pub channel: Option<String>,
    /// The channels this bool grants consent for (`@consent(c, ...)`).
    pub consent: Vec<String>,
    /// The field holds the contact's time zone (`@timezone`).
    pub timezone: bool,
    pub span: Span,
}

impl Field {
    /// A field a contact must be given: not optional, no default, not a collection.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
            && !matches!(self.ty, Type::Optional(_) | Type::Set(_) | Type::List(_))
    }
}

/// One event type and its payload.
#[derive(Clone, Debug)]
pub struct Event {
    pub name: String,
    pub fields: Vec<(String, Type)>,
    pub builtin: bool,
    pub span: Span,
}

impl Event {
    pub fn field(&self, name: &str) -> Option<(usize, &Type)> {
        self.fields
            .iter()
            .enumerate()
            .find(|(_, (n, _))| n == name)
            .map(|(i, (_, t))| (i, t))
    }
}

/// The names built-in events carry; both carry `attributes`.
pub const BUILTIN_EVENTS: &[&str] = &["contact_created", "contact_updated"];

/// The resolved schema of a program: fields and events by index.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub fields: Vec<Field>,
    pub events: Vec<Event>,
    field_index: FxHashMap<String, usize>,
    event_index: FxHashMap<String, usize>,
}

impl Schema {
    pub fn field(&self, name: &str) -> Option<usize> {
        self.field_index.get(name).copied()
    }

    pub fn event(&self, name: &str) -> Option<usize> {
        self.event_index.get(name).copied()
    }

    /// The field marked `@channel(channel)`.
    pub fn channel_field(&self, channel: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.channel.as_deref() == Some(channel))
    }

    /// The fields marked `@consent(..channel..)`.
    pub fn consent_fields<'a>(&'a self, channel: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.fields
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.consent.iter().any(|c| c == channel))
            .map(|(i, _)| i)
    }

    pub fn field_names(&self) -> impl Iterator<Item = &str> + Clone {
        self.fields.iter().map(|f| f.name.as_str())
    }

    pub fn event_names(&self) -> impl Iterator<Item = &str> + Clone {
        self.events.iter().map(|e| e.name.as_str())
    }

    /// Builds the schema, reporting bad declarations.
    pub fn build(
        contact: Option<&ContactBlock>,
        events: &[&EventDecl],
        diags: &mut Vec<Diagnostic>,
    ) -> Schema {
        let mut schema = Schema::default();
        for name in BUILTIN_EVENTS {
            schema.add_event(Event {
                name: name.to_string(),
                fields: Vec::new(),
                builtin: true,
                span: Span::default(),
            });
        }
        if let Some(contact) = contact {
            for decl in &contact.fields {
                if let Some(prev) = schema.field(&decl.name.name) {
                    diags.push(duplicate("field", &decl.name, schema.fields[prev].span));
                    continue;
                }
                let field = build_field(decl, &schema, diags);
                schema
                    .field_index
                    .insert(field.name.clone(), schema.fields.len());
                schema.fields.push(field);
            }
        }
        for decl in events {
            if let Some(prev) = schema.event(&decl.name.name) {
                let prev = &schema.events[prev];
                let d = if prev.builtin {
                    Diagnostic::error(
                        Code::DuplicateName,
                        decl.name.span,
                        format!("`{}` is a built-in event and cannot be declared", decl.name.name),
                    )
                    .with_label("built-in")
                    .with_help("`contact_created` and `contact_updated` are always declared; choose another name")
                } else {
                    duplicate("event", &decl.name, prev.span)
                };
                diags.push(d);
                continue;
            }
            let mut fields: Vec<(String, Type)> = Vec::new();
            for f in &decl.fields {
                if let Some((_, _)) = fields.iter().find(|(n, _)| *n == f.name.name) {
                    diags.push(duplicate("payload field", &f.name, f.name.span));
                    continue;
                }
                // An input record's own keys (LANGUAGE.md section 6).
                if matches!(f.name.name.as_str(), "at" | "contact" | "type" | "id") {
                    diags.push(
                        Diagnostic::error(
                            Code::ReservedField,
                            f.name.span,
                            format!(
                                "`{}` cannot name a payload field: every input record has its own `{}`",
                                f.name.name, f.name.name
                            ),
                        )
                        .with_label("reserved in input records")
                        .with_help("`at`, `contact`, `type` and `id` (the client's event id) are the record's keys; rename the field"),
                    );
                    continue;
                }
                fields.push((f.name.name.clone(), resolve_type(&f.ty, diags)));
            }
            schema.add_event(Event {
                name: decl.name.name.clone(),
                fields,
                builtin: false,
                span: decl.name.span,
            });
        }
        schema
    }

    fn add_event(&mut self, event: Event) {
        self.event_index
            .insert(event.name.clone(), self.events.len());
        self.events.push(event);
    }
}

fn duplicate(what: &str, name: &ast::Ident, first: Span) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateName,
        name.span,
        format!("the {what} `{}` is declared twice", name.name),
    )
    .with_label("declared again here")
    .with_related(first, "first declared here")
    .with_help(format!(
        "rename or remove one of the two declarations of `{}`",
        name.name
    ))
}

fn build_field(decl: &ast::FieldDecl, schema: &Schema, diags: &mut Vec<Diagnostic>) -> Field {
    let ty = resolve_type(&decl.ty, diags);
    let mut field = Field {
        name: decl.name.name.clone(),
        ty,
        default: decl.default.clone(),
        channel: None,
        consent: Vec::new(),
        timezone: false,
        span: decl.name.span,
    };
    for ann in &decl.annotations {
        annotate(&mut field, ann, schema, diags);
    }
    if let Some(default) = &decl.default {
        check_default(&field, default, diags);
    }
    field
}

fn annotate(
    field: &mut Field,
    ann: &ast::Annotation,
    schema: &Schema,
    diags: &mut Vec<Diagnostic>,
) {
    let base = field.ty.unwrap_optional().clone();
    for arg in &ann.args {
        if Channel::from_name(&arg.name).is_none() {
            diags.push(unknown::at(&unknown::CHANNEL, arg, Channel::names()));
        }
    }
    match ann.name.name.as_str() {
        "channel" | "consent" if ann.args.is_empty() => diags.push(
            Diagnostic::error(
                Code::BadAnnotation,
                ann.span,
                format!(
                    "`@{}` takes a channel, as in `@{}(email)`",
                    ann.name.name, ann.name.name
                ),
            )
            .with_label("no channel")
            .with_help("name the channel in parentheses"),
        ),
        "channel" => {
            if ann.args.len() != 1 {
                diags.push(
                    Diagnostic::error(
                        Code::BadAnnotation,
                        ann.span,
                        "`@channel` takes exactly one channel",
                    )
                    .with_label("here")
                    .with_help(
                        "mark each address field with its own channel, as in `@channel(sms)`",
                    ),
                );
            }
            if !base.is_stringy() {
                diags.push(
                    Diagnostic::error(
                        Code::BadAnnotation,
                        ann.span,
                        format!("a channel address must be a string, but `{}` is {}", field.name, field.ty),
                    )
                    .with_label("not a string field")
                    .with_help("put `@channel(...)` on the field that holds the address, such as `email: string`"),
                );
            }
            if let Some(arg) = ann.args.first() {
                if let Some(prev) = schema.channel_field(&arg.name) {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicateChannel,
                            arg.span,
                            format!("two fields are marked `@channel({})`", arg.name),
                        )
                        .with_label("second address field")
                        .with_related(schema.fields[prev].span, "first marked here")
                        .with_help("a channel has one address field"),
                    );
                }
                field.channel = Some(arg.name.clone());
            }
        }
        "timezone" => {
            if !ann.args.is_empty() || !matches!(base, Type::Str) {
                diags.push(
                    Diagnostic::error(
                        Code::BadAnnotation,
                        ann.span,
                        format!(
                            "`@timezone` marks a string field holding a zone name, but `{}` is {}",
                            field.name, field.ty
                        ),
                    )
                    .with_label("not a time zone field")
                    .with_help(
                        "put `@timezone` (no arguments) on a field such as `timezone: string?`",
                    ),
                );
            }
            if let Some(prev) = schema.fields.iter().find(|f| f.timezone) {
                diags.push(
                    Diagnostic::error(
                        Code::BadAnnotation,
                        ann.span,
                        "two fields are marked `@timezone`",
                    )
                    .with_label("second zone field")
                    .with_related(prev.span, "first marked here")
                    .with_help("a contact has one time zone field"),
                );
            }
            field.timezone = true;
        }
        "consent" => {
            if base != Type::Bool {
                diags.push(
                    Diagnostic::error(
                        Code::BadAnnotation,
                        ann.span,
                        format!(
                            "a consent field must be a bool, but `{}` is {}",
                            field.name, field.ty
                        ),
                    )
                    .with_label("not a bool field")
                    .with_help("put `@consent(...)` on a bool such as `opted_in: bool`"),
                );
            }
            field
                .consent
                .extend(ann.args.iter().map(|a| a.name.clone()));
        }
        other => diags.push(
            Diagnostic::error(
                Code::BadAnnotation,
                ann.name.span,
                format!("unknown annotation `@{other}`"),
            )
            .with_label("unknown")
            .with_help("the annotations are `@channel(c)`, `@consent(c, ...)` and `@timezone`"),
        ),
    }
}

/// Defaults must be constants of the field's type.
fn check_default(field: &Field, default: &Expr, diags: &mut Vec<Diagnostic>) {
    let ty = match &default.kind {
        ExprKind::Int(_) => Type::Int,
        ExprKind::Float(_) => Type::Float,
        ExprKind::Bool(_) => Type::Bool,
        ExprKind::Duration(_) => Type::Duration,
        ExprKind::Datetime(_) => Type::Datetime,
        ExprKind::Str(s) => match field.ty.unwrap_optional() {
            Type::Enum(members) if !members.contains(s) => {
                diags.push(enum_member_error(s, members, default.span));
                return;
            }
            Type::Enum(m) => Type::Enum(m.clone()),
            _ => Type::Str,
        },
        ExprKind::List(items) if items.iter().all(|i| matches!(i.kind, ExprKind::Str(_))) => {
            Type::List(Box::new(if items.is_empty() {
                Type::Unknown
            } else {
                Type::Str
            }))
        }
        ExprKind::Unary {
            op: ast::UnaryOp::Neg,
            operand,
        } if matches!(operand.kind, ExprKind::Int(_) | ExprKind::Float(_)) => {
            if matches!(operand.kind, ExprKind::Int(_)) {
                Type::Int
            } else {
                Type::Float
            }
        }
        _ => {
            diags.push(
                Diagnostic::error(
                    Code::NonConstantDefault,
                    default.span,
                    "a default must be a constant",
                )
                .with_label("not a literal")
                .with_help("write a literal value such as `0`, `\"free\"` or `false`"),
            );
            return;
        }
    };
    if !ty.assignable_to(&field.ty) {
        diags.push(
            Diagnostic::error(
                Code::Mismatch,
                default.span,
                format!(
                    "the default of `{}` must be {}, found {}",
                    field.name, field.ty, ty
                ),
            )
            .with_label(format!("this is {ty}"))
            .with_help(
                numeric_hint(&ty, &field.ty)
                    .unwrap_or_else(|| format!("write a value of type {}", field.ty)),
            ),
        );
    }
}

/// A hint for int/float confusion.
pub fn numeric_hint(found: &Type, expected: &Type) -> Option<String> {
    match (found, expected.unwrap_optional()) {
        (Type::Int, Type::Float) => {
            Some("write the number with a decimal point, such as `5.0`".into())
        }
        (Type::Float, Type::Int) => {
            Some("this field holds whole numbers; drop the decimals".into())
        }
        _ => None,
    }
}

pub fn enum_member_error(value: &str, members: &[String], span: Span) -> Diagnostic {
    let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    let mut help = format!("the members are {}", list.join(", "));
    if let Some(c) = suggest::closest(value, members.iter().map(String::as_str)) {
        help = format!("did you mean `\"{c}\"`? {help}");
    }
    Diagnostic::error(
        Code::EnumMember,
        span,
        format!("`\"{value}\"` is not a member of {}", list.join(" | ")),
    )
    .with_label("not a member")
    .with_help(help)
}

/// Resolves a written type, reporting unknown names.
pub fn resolve_type(ty: &TypeExpr, diags: &mut Vec<Diagnostic>) -> Type {
    let base = match &ty.kind {
        TypeKind::Named(name) => match name.name.as_str() {
            "string" => Type::Str,
            "int" => Type::Int,
            "float" => Type::Float,
            "bool" => Type::Bool,
            "datetime" => Type::Datetime,
            "duration" => Type::Duration,
            other => {
                const NAMES: &[&str] = &[
                    "string", "int", "float", "bool", "datetime", "duration", "set", "list",
                ];
                diags.push(Diagnostic::unknown(
                    &unknown::TYPE,
                    other,
                    name.span,
                    NAMES.iter().copied(),
                ));
                Type::Error
            }
        },
        TypeKind::Set(inner) => {
            let t = resolve_type(inner, diags);
            if !t.is_stringy() || inner.optional {
                diags.push(
                    Diagnostic::error(
                        Code::BadSetElement,
                        inner.span,
                        format!("sets hold strings, not {t}"),
                    )
                    .with_label("element type")
                    .with_help("write `set<string>`, or use `list<T>` for other values"),
                );
            }
            Type::Set(Box::new(t))
        }
        TypeKind::List(inner) => Type::List(Box::new(resolve_type(inner, diags))),
        TypeKind::Enum(members) => {
            let mut names: Vec<String> = Vec::new();
            for m in members {
                if names.contains(&m.value) {
                    diags.push(
                        Diagnostic::error(
                            Code::DuplicateName,
                            m.span,
                            format!("`\"{}\"` appears twice in this union", m.value),
                        )
                        .with_label("repeated")
                        .with_help("remove the repeated member"),
                    );
                } else {
                    names.push(m.value.clone());
                }
            }
            Type::Enum(names.into())
        }
    };
    if ty.optional {
        Type::Optional(Box::new(base))
    } else {
        base
    }
}
