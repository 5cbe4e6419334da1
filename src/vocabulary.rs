//! The language's fixed words, written once: keywords, built-in functions
//! and channels. The parser, the checker, the compiler and the REPL's
//! completion all read them from here.

/// Words that cannot name a workflow, event or field.
pub const KEYWORDS: &[&str] = &[
    "contact", "event", "workflow", "when", "where", "inactive", "for", "goal", "exit", "reenter",
    "send", "with", "tag", "untag", "set", "add", "remove", "notify", "webhook", "wait", "within",
    "timeout", "if", "else", "split", "stage", "and", "or", "not", "in", "is", "true", "false",
    "now", "trigger", "convert",
];

/// The history predicates, `seen(...)` and `count(...)`: written like calls,
/// parsed as their own construct (LANGUAGE.md section 4).
pub const HISTORY_FUNCTIONS: [&str; 2] = ["seen", "count"];

/// A built-in function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    Len,
    Lower,
    Upper,
    Contains,
    StartsWith,
    Days,
}

impl Builtin {
    pub const ALL: [Builtin; 6] = [
        Builtin::Len,
        Builtin::Lower,
        Builtin::Upper,
        Builtin::Contains,
        Builtin::StartsWith,
        Builtin::Days,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Len => "len",
            Builtin::Lower => "lower",
            Builtin::Upper => "upper",
            Builtin::Contains => "contains",
            Builtin::StartsWith => "starts_with",
            Builtin::Days => "days",
        }
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Builtin::Len | Builtin::Lower | Builtin::Upper | Builtin::Days => 1,
            Builtin::Contains | Builtin::StartsWith => 2,
        }
    }

    /// The signature, for help lines.
    pub fn signature(self) -> &'static str {
        match self {
            Builtin::Len => "len(string | set | list) -> int",
            Builtin::Lower => "lower(string) -> string",
            Builtin::Upper => "upper(string) -> string",
            Builtin::Contains => "contains(string, string) -> bool",
            Builtin::StartsWith => "starts_with(string, string) -> bool",
            Builtin::Days => "days(duration) -> float",
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// The channels a message can be sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
    Push,
    Webpush,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::Webpush,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Webpush => "webpush",
        }
    }

    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Every channel's name, for "did you mean".
    pub fn names() -> impl Iterator<Item = &'static str> + Clone {
        Channel::ALL.into_iter().map(Channel::name)
    }
}
