//! The `switchyard` binary: everything lives in the library; see `cli`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tune_allocator();
    switchyard::cli::run()
}

/// mimalloc (v3) keeps freed memory a full second before giving it back to the system. A
/// gateway's memory churns with every request, so under load that second is held at its
/// high-water mark: 256 clients peaked ~10 MB higher than with 10 ms (mimalloc v2's default),
/// which costs about half a page fault per request. `MIMALLOC_PURGE_DELAY` still wins.
#[allow(unsafe_code)]
fn tune_allocator() {
    /// `mi_option_purge_delay` of mimalloc's `mi_option_e`; the bindings name no constant.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const MILLISECONDS: std::ffi::c_long = 10;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores one option value; it may be called at any time, from
        // any thread, and no other thread runs yet.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, MILLISECONDS) }
    }
}
