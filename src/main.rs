//! The `teardown` command: everything is in the library; this only hands over and exits.

fn main() -> std::process::ExitCode {
    teardown::cli::main()
}
