//! The plugin process's memory allocator: a bump arena in front of the system allocator.
//!
//! Why: a plugin process lives for a few milliseconds and allocates a bounded amount
//! (the configuration, the node's IPAM state, a few netlink messages), then exits, and
//! the kernel takes all of its memory back at once. Every ADD and DEL parses and
//! rewrites the node's IPAM state, several allocations per pod of the node, and musl's
//! allocator, which the static plugin is linked with, returns freed pages to the kernel
//! one group at a time (an `munmap` and, on the next use, page faults again): with 200 to
//! 250 pods on the node, this arena alone cut an ADD's in-process time by about a third
//! (docs/benchmarks.md, "What grows with the pods on the node" and "The plugin's
//! allocator"). Here an allocation is one atomic add on an offset and a free
//! costs nothing; memory is given back only by the most recent allocation's free and
//! realloc (the growth of the `Vec` or `String` being built, in place).
//!
//! Bounded: the arena is [`ARENA_BYTES`] of zero-initialised static memory (`.bss`: only the
//! pages touched become resident); once it is used up every further allocation goes to
//! the system allocator, so a very large state file costs speed, not correctness. The
//! arena is used only by the `aksnet-cni` binary (its `main.rs`), never by a long-lived
//! process. On a host with strict overcommit (`vm.overcommit_memory=2`, proc(5)) the
//! 16 MiB count towards the commit limit for each running plugin process, resident or
//! not.

// An allocator is unsafe code by definition (`GlobalAlloc` is an unsafe trait); every
// unsafe block and impl below says why it holds.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The plugin's arena: far more than one call allocates at 250 pods on the node
/// (docs/benchmarks.md, "The plugin's allocator"), and small beside a node's memory.
pub const ARENA_BYTES: usize = 16 << 20;

/// A bump arena of `N` bytes, falling back to [`System`] when full. Thread-safe: the
/// plugin enters network namespaces on scoped threads.
pub struct Arena<const N: usize> {
    buf: UnsafeCell<[MaybeUninit<u8>; N]>,
    /// Bytes of `buf` handed out (the next allocation starts here, aligned).
    used: AtomicUsize,
}

// SAFETY: `buf` is only reached through `bump`, which hands every byte range to one
// caller (an atomic compare-and-swap on `used` reserves it); the arena keeps no other
// state, so sharing it between threads shares nothing mutable.
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Arena<N> {
    pub const fn new() -> Self {
        Self {
            buf: UnsafeCell::new([MaybeUninit::uninit(); N]),
            used: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.buf.get() as usize
    }

    /// Whether `ptr` was handed out by the arena (rather than by [`System`]).
    fn owns(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + N
    }

    /// Reserves `layout` in the arena; null when it does not fit.
    fn bump(&self, layout: Layout) -> *mut u8 {
        let base = self.base();
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(start) = (base + used).checked_next_multiple_of(layout.align()) else {
                return std::ptr::null_mut();
            };
            let end = start - base + layout.size();
            if end > N {
                return std::ptr::null_mut();
            }
            match self
                .used
                .compare_exchange_weak(used, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                // A pointer into `buf`, derived from it, so it keeps its provenance.
                Ok(_) => return self.buf.get().cast::<u8>().wrapping_add(start - base),
                Err(now) => used = now,
            }
        }
    }

    /// Moves the end of the arena from the end of the allocation at `offset` of `old`
    /// bytes to `offset + new`, if that allocation is still the most recent one.
    fn resize_last(&self, offset: usize, old: usize, new: usize) -> bool {
        let Some(new_end) = offset.checked_add(new).filter(|&e| e <= N) else {
            return false;
        };
        self.used
            .compare_exchange(offset + old, new_end, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Bytes handed out so far (for tests and the benchmark notes).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

// SAFETY: `alloc` returns either a fresh range of `buf` of `layout.size()` bytes aligned
// to `layout.align()` that no other live allocation overlaps (`bump`), or what
// `System.alloc` returns for the same layout. `dealloc` and `realloc` send pointers the
// arena did not hand out to `System` with the layout they were allocated with, and only
// ever move the arena's end back over the most recent allocation, which the caller is
// giving back or resizing.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.bump(layout);
        if p.is_null() {
            // SAFETY: the caller's contract for `layout` is passed on unchanged.
            unsafe { System.alloc(layout) }
        } else {
            p
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owns(ptr) {
            // Only the most recent allocation gives its bytes back (a temporary that
            // was freed before anything else was allocated).
            let offset = ptr as usize - self.base();
            self.resize_last(offset, layout.size(), 0);
        } else {
            // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(ptr) {
            // In place when shrinking (the most recent allocation also gives its tail
            // back) or when the most recent allocation grows.
            let offset = ptr as usize - self.base();
            let moved_end = self.resize_last(offset, layout.size(), new_size);
            if moved_end || new_size <= layout.size() {
                return ptr;
            }
        }
        // SAFETY: `new_size` with the old alignment is a valid layout (the caller's
        // contract); the copy covers the smaller of the two sizes, both allocations are
        // live and distinct, and `ptr` is freed with the layout it was allocated with.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("layout")
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_in_the_arena() {
        let a: Box<Arena<4096>> = Box::default();
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for (i, align) in [1usize, 8, 2, 64, 16, 4, 256].into_iter().enumerate() {
            let size = 1 + i * 7;
            // SAFETY: non-zero size, power-of-two alignment.
            let p = unsafe { a.alloc(layout(size, align)) };
            assert!(a.owns(p), "allocation {i} within the arena");
            assert_eq!(p as usize % align, 0, "allocation {i} aligned to {align}");
            let r = (p as usize, p as usize + size);
            assert!(
                seen.iter().all(|s| r.1 <= s.0 || r.0 >= s.1),
                "{r:?} overlaps {seen:?}"
            );
            seen.push(r);
        }
    }

    #[test]
    fn a_full_arena_falls_back_to_the_system_allocator() {
        let a: Box<Arena<256>> = Box::default();
        // SAFETY: valid layouts; each pointer is freed once with its layout.
        unsafe {
            let inside = a.alloc(layout(200, 8));
            assert!(a.owns(inside));
            let outside = a.alloc(layout(100, 8));
            assert!(!outside.is_null() && !a.owns(outside), "the system's");
            outside.write_bytes(0xAB, 100);
            a.dealloc(outside, layout(100, 8));
            a.dealloc(inside, layout(200, 8));
        }
        assert_eq!(a.used(), 0, "the last allocation gave its bytes back");
    }

    #[test]
    fn the_last_allocation_grows_in_place_and_others_move_with_their_bytes() {
        let a: Box<Arena<4096>> = Box::default();
        // SAFETY: valid layouts; every pointer is used within its current size.
        unsafe {
            let first = a.alloc(layout(16, 8));
            first.write_bytes(7, 16);
            let grown = a.realloc(first, layout(16, 8), 64);
            assert_eq!(grown, first, "most recent: in place");
            assert_eq!(a.used(), 64);
            let second = a.alloc(layout(8, 8));
            let moved = a.realloc(grown, layout(64, 8), 128);
            assert_ne!(moved, grown, "no longer the most recent: moved");
            assert!((0..16).all(|i| *moved.add(i) == 7), "bytes copied");
            let shrunk = a.realloc(moved, layout(128, 8), 32);
            assert_eq!(shrunk, moved, "shrinks in place");
            a.dealloc(second, layout(8, 8));
        }
    }

    #[test]
    fn growth_past_the_arena_moves_to_the_system_allocator() {
        let a: Box<Arena<128>> = Box::default();
        // SAFETY: valid layouts; each pointer is freed once with its current layout.
        unsafe {
            let p = a.alloc(layout(100, 1));
            p.write_bytes(3, 100);
            let q = a.realloc(p, layout(100, 1), 1000);
            assert!(!a.owns(q));
            assert!((0..100).all(|i| *q.add(i) == 3));
            a.dealloc(q, layout(1000, 1));
        }
        assert_eq!(a.used(), 0);
    }

    #[test]
    fn concurrent_threads_get_disjoint_ranges() {
        static A: Arena<{ 1 << 16 }> = Arena::new();
        let ranges: Vec<Vec<(usize, usize)>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..200)
                            // SAFETY: valid layout; never freed (the arena is static).
                            .map(|_| unsafe { A.alloc(layout(24, 8)) } as usize)
                            .map(|p| (p, p + 24))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        let mut all: Vec<(usize, usize)> = ranges.into_iter().flatten().collect();
        all.sort();
        assert_eq!(all.len(), 800);
        assert!(
            all.windows(2).all(|w| w[0].1 <= w[1].0),
            "no two ranges overlap"
        );
    }
}
