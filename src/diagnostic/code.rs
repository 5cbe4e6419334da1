//! Stable diagnostic codes: every code any pass emits, written once.

use std::fmt;

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// A diagnostic's stable code, as `check --format json` and the
        /// rendered diagnostics show it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
            /// A lint rule's finding: the rule's code, `nurture::lint::NAME`.
            Lint(&'static str),
        }

        impl Code {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                    Code::Lint(code) => code,
                }
            }
        }
    };
}

codes! {
    ReplBadInput => "nurture::repl::bad-input",
    ReplBadJson => "nurture::repl::bad-json",
    ReplUsage => "nurture::repl::usage",
    RuntimeFault => "nurture::runtime::fault",
    AssignInCondition => "nurture::syntax::assign-in-condition",
    BadDatetime => "nurture::syntax::bad-datetime",
    BadDurationUnit => "nurture::syntax::bad-duration-unit",
    BareName => "nurture::syntax::bare-name",
    CompareInSet => "nurture::syntax::compare-in-set",
    DuplicateHeader => "nurture::syntax::duplicate-header",
    DurationTooLarge => "nurture::syntax::duration-too-large",
    ForeignSyntax => "nurture::syntax::foreign-syntax",
    HeaderAfterStatement => "nurture::syntax::header-after-statement",
    IntTooLarge => "nurture::syntax::int-too-large",
    KeywordAsName => "nurture::syntax::keyword-as-name",
    NestedTooDeeply => "nurture::syntax::nested-too-deeply",
    MissingTrigger => "nurture::syntax::missing-trigger",
    UnclosedBrace => "nurture::syntax::unclosed-brace",
    UnexpectedToken => "nurture::syntax::unexpected-token",
    UnterminatedString => "nurture::syntax::unterminated-string",
    WaitForWithoutWithin => "nurture::syntax::wait-for-without-within",
    AlwaysSet => "nurture::type::always-set",
    Arity => "nurture::type::arity",
    BadAnnotation => "nurture::type::bad-annotation",
    BadAssign => "nurture::type::bad-assign",
    BadCompoundAssign => "nurture::type::bad-compound-assign",
    BadOperand => "nurture::type::bad-operand",
    BadSetElement => "nurture::type::bad-set-element",
    ChannelUnset => "nurture::type::channel-unset",
    DuplicateChannel => "nurture::type::duplicate-channel",
    DuplicateName => "nurture::type::duplicate-name",
    ReservedField => "nurture::type::reserved-field",
    EnumMember => "nurture::type::enum-member",
    EventOutOfScope => "nurture::type::event-out-of-scope",
    Mismatch => "nurture::type::mismatch",
    MultipleContactBlocks => "nurture::type::multiple-contact-blocks",
    NoChannelField => "nurture::type::no-channel-field",
    NoContactBlock => "nurture::type::no-contact-block",
    NoTagsField => "nurture::type::no-tags-field",
    NonConstantDefault => "nurture::type::non-constant-default",
    NonPositiveDuration => "nurture::type::non-positive-duration",
    OptionalUnchecked => "nurture::type::optional-unchecked",
    SplitTotal => "nurture::type::split-total",
    TooManyTriggers => "nurture::type::too-many-triggers",
    TooManyStages => "nurture::type::too-many-stages",
    TriggerOutOfScope => "nurture::type::trigger-out-of-scope",
    TriggerReadsTime => "nurture::type::condition-trigger-reads-time",
    UnknownChannel => "nurture::type::unknown-channel",
    UnknownEvent => "nurture::type::unknown-event",
    UnknownField => "nurture::type::unknown-field",
    UnknownFunction => "nurture::type::unknown-function",
    UnknownPayloadField => "nurture::type::unknown-payload-field",
    UnknownType => "nurture::type::unknown-type",
    UnknownWorkflow => "nurture::type::unknown-workflow",
    MissingField => "nurture::type::missing-field",
    TestUnknownContact => "nurture::test::unknown-contact",
    TestNotLiteral => "nurture::test::not-literal",
    TestFailed => "nurture::test::failed",
    BadClockTime => "nurture::type::bad-clock-time",
    UnknownTimezone => "nurture::type::unknown-timezone",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
impl PartialEq<String> for Code {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

/// A code reads as its text, for callers that print or compare it.
impl std::ops::Deref for Code {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}
