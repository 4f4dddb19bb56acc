//! Work split in two and run on both cores at once.
//!
//! A start reads and rebuilds a national fleet: a hundred thousand transits and devices, on a
//! machine that may have two cores. Each such step runs its two halves side by side, one on
//! the calling thread and one on a scoped thread.

/// Runs `first` on this thread and `second` on another, side by side, and returns both
/// results. A panic on the other thread is raised again here, as if it had happened on this
/// one.
pub(crate) fn side_by_side<A, B>(
    first: impl FnOnce() -> A,
    second: impl FnOnce() -> B + Send,
) -> (A, B)
where
    B: Send,
{
    std::thread::scope(|scope| {
        let other = scope.spawn(second);
        let mine = first();
        let theirs = other
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (mine, theirs)
    })
}

#[cfg(test)]
mod tests {
    use super::side_by_side;

    #[test]
    fn both_halves_run_on_two_threads_and_come_back_in_order() {
        let here = std::thread::current().id();
        let (a, b) = side_by_side(
            || (std::thread::current().id(), 1),
            || (std::thread::current().id(), 2),
        );
        assert_eq!((a.0, a.1, b.1), (here, 1, 2));
        assert_ne!(b.0, here);
    }

    #[test]
    fn a_panic_on_the_other_thread_is_raised_here() {
        let caught = std::panic::catch_unwind(|| side_by_side(|| 1, || -> i32 { panic!("half") }));
        assert!(caught.is_err());
    }
}
