//! The `switchyard` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    switchyard::cli::run()
}
