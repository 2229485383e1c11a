//! The `offkit` binary: parse arguments, call the library, map errors to exit codes.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    offkit::cli::main()
}
