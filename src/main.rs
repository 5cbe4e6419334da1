//! The `nurture` command.

/// mimalloc: faster than the system allocator for the many small, short-lived
/// values of the per-event path, and for values freed on another thread than
/// the one that made them (input is parsed on a second thread).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    nurture::cli::main()
}
