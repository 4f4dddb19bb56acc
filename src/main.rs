use std::process::ExitCode;

/// mimalloc rather than the system allocator: about a fifth less CPU per fix
/// (ARCHITECTURE.md, "Dependencies, and why"; BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the mimalloc (v3) that libmimalloc-sys builds, which the sys
/// crate does not name; [`PURGE_DELAY_DEFAULT_MS`] checks that the index still means it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const PURGE_DELAY_DEFAULT_MS: std::os::raw::c_long = 1_000;

/// Pages that fall empty go back to the system at once instead of a second later: in the
/// scale runs a third less memory per tracked truck, at the same speed. An operator's
/// `MIMALLOC_PURGE_DELAY` stands. mimalloc reads its environment before `main`, so this is
/// set through its option call rather than the environment.
fn purge_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mimalloc's option calls read and write a plain integer in its option table;
    // any option index is valid, and the default is checked before it is changed.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == PURGE_DELAY_DEFAULT_MS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

fn main() -> ExitCode {
    purge_at_once();
    caravan::cli::main()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_index_names_mimallocs_purge_delay() {
        // Before the change: mimalloc v3's default purge delay is exactly 1,000 ms; a
        // different index (a mimalloc upgrade) would read another option's value.
        // SAFETY: as in `purge_at_once`.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        let before = get();
        purge_at_once();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            assert_eq!(get(), before, "an operator's value stands");
        } else {
            assert_eq!(before, PURGE_DELAY_DEFAULT_MS);
            assert_eq!(get(), 0);
        }
    }
}
