//! The `switchyard` binary: everything lives in the library; see `cli`.

/// mimalloc rather than glibc's malloc: the request path allocates many small, short-lived
/// buffers (see the README's Performance section for what it bought).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchyard::cli::run()
}
