//! The `consentry-emulator` binary: everything lives in the library; see
//! `consentry-emulator --help`.

fn main() -> std::process::ExitCode {
    consentry_emulator::cli::main()
}
