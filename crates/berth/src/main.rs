//! The berth binary: everything lives in the crates; this only hands over.

fn main() -> std::process::ExitCode {
    berth_cli::main()
}
