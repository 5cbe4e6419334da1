//! nurture: a rules language and interpreter for marketing-automation workflows.
//!
//! The passes, each over the one AST: [`syntax`] parses `.flow` text,
//! [`check`] proves a program well-typed against its contact schema, and
//! [`runtime`] executes it against contact events in virtual time.

pub mod ast;
pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod diff;
pub mod fmt;
pub mod inspect;
pub mod lint;
pub mod pipeline;
pub mod pretty;
pub mod repl;
pub mod report;
pub mod runtime;
pub mod serve;
pub mod source;
pub mod suggest;
pub mod syntax;
pub mod testing;
pub mod vocabulary;
