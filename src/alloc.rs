//! The component's allocator: a free list per size class for small blocks, the system
//! allocator (dlmalloc on wasm) for the rest.
//!
//! Every string of every record passed to `deliver` is one allocation made by the host through
//! `cabi_realloc` and freed after the call: about twenty small blocks a record. Size classes
//! make each of those a few instructions instead of a trip through dlmalloc. Small blocks are
//! kept for reuse (never given back), so memory stays at the peak of small blocks in use,
//! which one batch bounds.
//!
//! Not thread-safe: a component instance runs on one thread, and only the wasm build installs
//! it as the global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Class granularity and alignment.
const GRAIN: usize = 16;
/// Classes of 16, 32, ... 512 bytes.
const CLASSES: usize = 32;
const MAX_SMALL: usize = GRAIN * CLASSES;
/// Small blocks are cut from slabs of this size.
const SLAB: usize = 64 * 1024;

struct Inner {
    free: [*mut u8; CLASSES],
    bump: *mut u8,
    end: *mut u8,
}

pub struct SizeClasses(UnsafeCell<Inner>);

// SAFETY: used by one thread only (see the module documentation).
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    pub const fn new() -> Self {
        SizeClasses(UnsafeCell::new(Inner {
            free: [ptr::null_mut(); CLASSES],
            bump: ptr::null_mut(),
            end: ptr::null_mut(),
        }))
    }
}

impl Default for SizeClasses {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn small(layout: &Layout) -> bool {
    layout.size() != 0 && layout.size() <= MAX_SMALL && layout.align() <= GRAIN
}

#[inline(always)]
fn class(size: usize) -> usize {
    (size - 1) / GRAIN
}

unsafe impl GlobalAlloc for SizeClasses {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !small(&layout) {
            return System.alloc(layout);
        }
        let c = class(layout.size());
        let inner = &mut *self.0.get();
        let head = inner.free[c];
        if !head.is_null() {
            inner.free[c] = *(head as *mut *mut u8);
            return head;
        }
        let size = (c + 1) * GRAIN;
        if (inner.end as usize) - (inner.bump as usize) < size {
            // The rest of the old slab (< 512 bytes) is left unused.
            let slab = System.alloc(Layout::from_size_align_unchecked(SLAB, GRAIN));
            if slab.is_null() {
                return slab;
            }
            inner.bump = slab;
            inner.end = slab.add(SLAB);
        }
        let p = inner.bump;
        inner.bump = p.add(size);
        p
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if !small(&layout) {
            return System.dealloc(p, layout);
        }
        let c = class(layout.size());
        let inner = &mut *self.0.get();
        *(p as *mut *mut u8) = inner.free[c];
        inner.free[c] = p;
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = Layout::from_size_align_unchecked(new_size, layout.align());
        match (small(&layout), small(&new)) {
            (false, false) => System.realloc(p, layout, new_size),
            (true, true) if class(layout.size()) == class(new_size) => p,
            _ => {
                let q = self.alloc(new);
                if !q.is_null() {
                    ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    self.dealloc(p, layout);
                }
                q
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_distinct_aligned_and_keep_their_contents() {
        let a = SizeClasses::new();
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 7u64;
        for round in 0..20_000u32 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (seed >> 33) as usize;
            if r.is_multiple_of(3) && !live.is_empty() {
                let (p, l, v) = live.swap_remove(r % live.len());
                unsafe {
                    assert!((0..l.size()).all(|i| *p.add(i) == v), "round {round}");
                    a.dealloc(p, l);
                }
            } else if r % 3 == 1 && !live.is_empty() {
                let k = r % live.len();
                let (p, l, v) = live[k];
                let n = 1 + (r >> 8) % 2000;
                unsafe {
                    let q = a.realloc(p, l, n);
                    assert!((0..l.size().min(n)).all(|i| *q.add(i) == v));
                    let l = Layout::from_size_align(n, l.align()).unwrap();
                    ptr::write_bytes(q, v, n);
                    live[k] = (q, l, v);
                }
            } else {
                let size = 1 + (r >> 4) % if r.is_multiple_of(7) { 5000 } else { 600 };
                let align = [1, 2, 4, 8, 16, 32][(r >> 2) % 6];
                let l = Layout::from_size_align(size, align).unwrap();
                let v = (r >> 16) as u8;
                unsafe {
                    let p = a.alloc(l);
                    assert!(!p.is_null() && (p as usize).is_multiple_of(align));
                    ptr::write_bytes(p, v, size);
                    live.push((p, l, v));
                }
            }
        }
        for (p, l, v) in live {
            unsafe {
                assert!((0..l.size()).all(|i| *p.add(i) == v));
                a.dealloc(p, l);
            }
        }
    }
}
