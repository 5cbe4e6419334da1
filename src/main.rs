//! The `nurture` command.

fn main() -> std::process::ExitCode {
    nurture::cli::main()
}
