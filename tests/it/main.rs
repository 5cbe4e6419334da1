//! The integration test binary: one module per part of the pipeline.

mod accept;
mod architecture;
mod calendar;
mod cli;
mod cluster;
mod editors;
mod findings;
mod fmt;
mod helpers;
mod interpreter;
mod lint;
mod lsp;
mod messages;
mod parse;
mod props;
mod regressions;
mod repl;
mod report;
mod run;
mod serve;
mod snapshot;
mod state;
mod syntax_errors;
mod testing;
mod trust;
mod type_errors;
