//! [`CacheAligned`], a global allocator that starts every allocation of
//! [`CacheAligned::MIN_SIZE`] bytes or more on a 64-byte cache line.
//!
//! The kernels read matrices a vector at a time, row by row. The C library's `malloc`
//! returns 16-byte-aligned blocks, so a row of 500 `f64` starts 16 or 48 bytes into a
//! cache line and every second 32-byte load of an AVX2 kernel spans two lines: each such
//! load costs two accesses to the L1 cache. With the matrices on cache lines (and rows of
//! a multiple of 32 bytes) no vector load spans two lines. Measured with
//! `examples/kernels_f64.rs` (AVX2, one thread, batch 32): the first layer's sparse
//! update 24 % faster, the dense `500 x 500` product and its fused update 12 % and 7 %,
//! the sparse product 6 %. The results do not change: the kernels' arithmetic does not
//! depend on where a matrix starts.
//!
//! A library cannot choose the allocator of the program that uses it; a program opts in
//! with two lines (the `glorot` binary does):
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: glorot_tensor::alloc::CacheAligned = glorot_tensor::alloc::CacheAligned;
//!
//! let v = vec![0.0f64; 500];
//! assert_eq!(v.as_ptr() as usize % 64, 0);
//! ```
#![allow(unsafe_code)] // a GlobalAlloc is an unsafe trait: it forwards to the system's

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, with blocks of [`CacheAligned::MIN_SIZE`] bytes or more aligned
/// to [`CacheAligned::LINE`] bytes (smaller ones, and those asking for a larger
/// alignment, as the system allocator makes them). See the [module](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheAligned;

impl CacheAligned {
    /// The alignment given to large blocks: a cache line on x86-64 and on the common
    /// aarch64 cores.
    pub const LINE: usize = 64;
    /// Blocks from this size on are aligned to [`CacheAligned::LINE`].
    pub const MIN_SIZE: usize = 512;

    /// The layout the system allocator is asked for in place of `layout`: a function of
    /// `layout` alone, so that a block is freed with the layout it was made with.
    fn system_layout(layout: Layout) -> Layout {
        if layout.size() >= Self::MIN_SIZE && layout.align() < Self::LINE {
            // Fails only for sizes within 64 bytes of isize::MAX, which no allocation of
            // `layout`'s size could have anyway.
            Layout::from_size_align(layout.size(), Self::LINE).unwrap_or(layout)
        } else {
            layout
        }
    }
}

// SAFETY: every block comes from `System` with a layout of the requested size and at
// least the requested alignment, and goes back to `System` with that same layout (a
// function of the caller's layout, which the caller passes unchanged to `dealloc` and
// `realloc`); `realloc` keeps the contents up to the smaller size.
unsafe impl GlobalAlloc for CacheAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout has a nonzero size, so has ours (the same size).
        unsafe { System.alloc(Self::system_layout(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(Self::system_layout(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` (or `realloc`) for `layout`, so by
        // `System` for `system_layout(layout)`.
        unsafe { System.dealloc(ptr, Self::system_layout(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = Self::system_layout(layout);
        // SAFETY: `GlobalAlloc::realloc`'s contract: `new_size`, rounded up to
        // `layout.align()`, does not overflow `isize`.
        let new = Self::system_layout(unsafe {
            Layout::from_size_align_unchecked(new_size, layout.align())
        });
        if new.align() == old.align() {
            // SAFETY: `ptr` is `System`'s block of layout `old`; the new size is valid.
            return unsafe { System.realloc(ptr, old, new_size) };
        }
        // The block crosses `MIN_SIZE`: a new block with the other alignment.
        // SAFETY: `new` has a nonzero size; on success the two blocks are distinct and
        // both hold at least the copied bytes; the old one is `System`'s, of layout `old`.
        unsafe {
            let fresh = System.alloc(new);
            if !fresh.is_null() {
                std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                System.dealloc(ptr, old);
            }
            fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_blocks_start_on_a_cache_line_and_keep_their_contents_when_resized() {
        let a = CacheAligned;
        for (size, grown) in [
            (8, 600),
            (511, 512),
            (512, 4000),
            (4096, 100),
            (1 << 20, 64),
        ] {
            let layout = Layout::from_size_align(size, 8).expect("a valid layout");
            // SAFETY: nonzero sizes; every block is freed once with its current layout.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                if size >= CacheAligned::MIN_SIZE {
                    assert_eq!(p as usize % CacheAligned::LINE, 0, "{size} bytes");
                }
                for i in 0..size {
                    *p.add(i) = (i % 251) as u8;
                }
                let q = a.realloc(p, layout, grown);
                assert!(!q.is_null());
                if grown >= CacheAligned::MIN_SIZE {
                    assert_eq!(
                        q as usize % CacheAligned::LINE,
                        0,
                        "{size} -> {grown} bytes"
                    );
                }
                for i in 0..size.min(grown) {
                    assert_eq!(*q.add(i), (i % 251) as u8, "byte {i} of {size} -> {grown}");
                }
                a.dealloc(
                    q,
                    Layout::from_size_align(grown, 8).expect("a valid layout"),
                );
                let z = a.alloc_zeroed(layout);
                assert!((0..size).all(|i| *z.add(i) == 0));
                a.dealloc(z, layout);
            }
        }
    }

    #[test]
    fn larger_alignments_than_a_line_are_kept() {
        let layout = Layout::from_size_align(4096, 4096).expect("a valid layout");
        assert_eq!(CacheAligned::system_layout(layout), layout);
        let small = Layout::from_size_align(100, 8).expect("a valid layout");
        assert_eq!(CacheAligned::system_layout(small), small);
    }
}
