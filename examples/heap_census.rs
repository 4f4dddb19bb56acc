//! `caravan` with a counting allocator: every two seconds it writes to stderr the bytes the
//! process holds on its heap (live allocations, not RSS), in all and by allocation size.
//!
//! RSS says how much memory a fleet costs; this says what holds it. Sizes of the structs a
//! truck keeps are known (`size_of`), so a size class that grows by one struct per truck
//! names its owner. `BENCHMARKS.md` ("Memory per truck") reads it like this:
//!
//! ```text
//! cargo build --release --example heap_census
//! target/release/examples/heap_census --data-dir DIR serve
//! ```
//!
//! It wraps the same allocator as the `caravan` binary (mimalloc), but without its purge
//! setting: its live bytes are comparable, its RSS is not.

use std::alloc::{GlobalAlloc, Layout};
use std::process::ExitCode;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Duration;

/// Size classes by power of two: class `i` holds allocations of `2^(i-1)` to `2^i - 1`
/// bytes; the last one everything from 1 GiB.
const CLASSES: usize = 32;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
static BY_CLASS: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];
/// Live blocks by size rounded up to 8 bytes, for blocks under [`EXACT_BELOW`]: the census
/// line ends with the sizes that hold the most, so a struct shows by its own size.
const EXACT_BELOW: usize = 1024;
static BY_SIZE: [AtomicIsize; EXACT_BELOW / 8] = [const { AtomicIsize::new(0) }; EXACT_BELOW / 8];

fn class(size: usize) -> usize {
    (usize::BITS - size.leading_zeros()).min(CLASSES as u32 - 1) as usize
}

fn count(size: usize, sign: isize) {
    let bytes = sign * size as isize;
    LIVE.fetch_add(bytes, Relaxed);
    BY_CLASS[class(size)].fetch_add(bytes, Relaxed);
    if let Some(blocks) = BY_SIZE.get(size.div_ceil(8)) {
        blocks.fetch_add(sign, Relaxed);
    }
}

struct Counting;

// SAFETY: every call is passed on unchanged to mimalloc, which upholds the contract; the
// counters are plain atomics that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        BLOCKS.fetch_add(1, Relaxed);
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        BLOCKS.fetch_sub(1, Relaxed);
        // SAFETY: `ptr` was allocated by this allocator with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        // SAFETY: `ptr` was allocated by this allocator with `layout`.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn census() -> String {
    let classes: Vec<String> = BY_CLASS
        .iter()
        .enumerate()
        .filter(|(_, bytes)| bytes.load(Relaxed) >= 1024)
        .map(|(i, bytes)| {
            let bound = if i + 1 == CLASSES {
                format!(">={}", 1usize << (i - 1))
            } else {
                format!("<{}", 1usize << i)
            };
            format!("{bound}:{}K", bytes.load(Relaxed) / 1024)
        })
        .collect();
    let mut sizes: Vec<(usize, isize)> = BY_SIZE
        .iter()
        .enumerate()
        .map(|(i, blocks)| (i * 8, blocks.load(Relaxed)))
        .filter(|(_, blocks)| *blocks > 0)
        .collect();
    sizes.sort_by_key(|(size, blocks)| std::cmp::Reverse(*size as isize * blocks));
    let sizes: Vec<String> = sizes
        .iter()
        .take(16)
        .map(|(size, blocks)| format!("{size}B×{blocks}"))
        .collect();
    format!(
        "heap: {} KiB live in {} blocks | {} | most held, by size up to 8 B: {}",
        LIVE.load(Relaxed) / 1024,
        BLOCKS.load(Relaxed),
        classes.join(" "),
        sizes.join(" ")
    )
}

fn main() -> ExitCode {
    std::thread::spawn(|| loop {
        std::thread::sleep(Duration::from_secs(2));
        eprintln!("{}", census());
    });
    caravan::cli::main()
}
