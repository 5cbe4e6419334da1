//! The types of the language.

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Str,
    Int,
    Float,
    Bool,
    Datetime,
    Duration,
    Set(Box<Type>),
    List(Box<Type>),
    /// A union of string literals, such as `"free" | "trial" | "paid"`.
    Enum(Arc<[String]>),
    /// `T?`: a value that may be unset.
    Optional(Box<Type>),
    /// The element type of `[]`, compatible with any element.
    Unknown,
    /// The type of an expression that already produced an error; it is
    /// compatible with everything so one mistake is reported once.
    Error,
}

impl Type {
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Float | Type::Error)
    }

    pub fn is_optional(&self) -> bool {
        matches!(self, Type::Optional(_))
    }

    /// The type without its `?`.
    pub fn unwrap_optional(&self) -> &Type {
        match self {
            Type::Optional(t) => t,
            t => t,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Type::Error | Type::Unknown)
    }

    /// Strings and enums are both strings at run time.
    pub fn is_stringy(&self) -> bool {
        matches!(self, Type::Str | Type::Enum(_) | Type::Error)
    }

    /// Whether a value of type `self` may be stored where `target` is expected.
    pub fn assignable_to(&self, target: &Type) -> bool {
        match (self, target) {
            (Type::Error | Type::Unknown, _) | (_, Type::Error | Type::Unknown) => true,
            (Type::Optional(a), Type::Optional(b)) => a.assignable_to(b),
            (a, Type::Optional(b)) => a.assignable_to(b),
            (Type::Optional(_), _) => false,
            (Type::Enum(a), Type::Enum(b)) => a.iter().all(|m| b.contains(m)),
            (Type::Enum(_), Type::Str) => true,
            (Type::Set(a) | Type::List(a), Type::Set(b)) => a.assignable_to(b),
            (Type::List(a), Type::List(b)) => a.assignable_to(b),
            (a, b) => a == b,
        }
    }

    /// Whether two values can be compared with `==`.
    pub fn comparable(&self, other: &Type) -> bool {
        (self.is_numeric() && other.is_numeric())
            || (self.is_stringy() && other.is_stringy())
            || self.assignable_to(other)
            || other.assignable_to(self)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Str => f.write_str("string"),
            Type::Int => f.write_str("int"),
            Type::Float => f.write_str("float"),
            Type::Bool => f.write_str("bool"),
            Type::Datetime => f.write_str("datetime"),
            Type::Duration => f.write_str("duration"),
            Type::Set(t) => write!(f, "set<{t}>"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Enum(members) => {
                let quoted: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
                f.write_str(&quoted.join(" | "))
            }
            Type::Optional(t) => write!(f, "{t}?"),
            Type::Unknown => f.write_str("unknown"),
            Type::Error => f.write_str("{error}"),
        }
    }
}
