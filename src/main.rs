//! The `consentry` binary: everything lives in the library; see `consentry --help`.

fn main() -> std::process::ExitCode {
    consentry::cli::main()
}
