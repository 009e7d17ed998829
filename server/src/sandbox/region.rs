//! Small blocks of one Lua state, carved from a region of its own.
//!
//! Lua tells its allocator the size of every block it frees or resizes, so
//! a block needs no header: a block of up to [`SMALL_MAX`] bytes is popped
//! from the free list of its size class (16-byte steps) or carved from the
//! state's region, a [`REGION`]-byte anonymous mapping made on first use.
//! The C allocator spends 8 to 16 bytes of header and rounding on each of
//! the thousand-odd small objects a warm instance holds, and several times
//! the instructions of a free-list pop on each call.
//!
//! The rules:
//! - A freed block goes back to its class's list and is reused by the same
//!   state only; the mapping goes when the region is dropped, after the
//!   state is closed. So the memory a state holds beyond the bytes its
//!   meter counts is bounded by the region's size, whatever its code does.
//! - [`Region::alloc`] returns null when the block is larger than
//!   `SMALL_MAX`, the region is full, or no region could be mapped: the
//!   caller then uses its fallback allocator. A block the region did not
//!   make must never be passed to [`Region::free`]; [`Region::owns`] tells.
//! - At most [`MAX_REGIONS`] regions exist in the process at once (each is
//!   a mapping, and the kernel caps mappings per process); states beyond
//!   that use the fallback for every block.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest block a region serves.
pub const SMALL_MAX: usize = 512;
/// Bytes of address space per region (pages count towards RSS only once
/// touched).
pub const REGION: usize = 64 * 1024;
/// Regions mapped in the process at most (1 GiB of address space).
pub const MAX_REGIONS: usize = 16 * 1024;

const GRAIN: usize = 16;
const CLASSES: usize = SMALL_MAX / GRAIN;

static REGIONS: AtomicUsize = AtomicUsize::new(0);

/// The size class of a block of `n` bytes, 1 ..= `SMALL_MAX`.
#[inline]
fn class(n: usize) -> usize {
    (n - 1) / GRAIN
}

/// One state's region and the free lists of its size classes. Not `Sync`:
/// a state is used by one thread at a time.
pub struct Region {
    /// The mapping, null until the first small block (or if none could be
    /// made).
    base: Cell<*mut u8>,
    /// Bytes of the mapping handed out at least once.
    top: Cell<usize>,
    /// Whether mapping was tried (it is tried once).
    tried: Cell<bool>,
    /// Heads of the free lists: a free block holds the next one's address.
    free: [Cell<*mut u8>; CLASSES],
}

impl Default for Region {
    fn default() -> Self {
        Self::new()
    }
}

impl Region {
    /// A region that maps its memory on first use.
    pub const fn new() -> Self {
        Self {
            base: Cell::new(ptr::null_mut()),
            top: Cell::new(0),
            tried: Cell::new(false),
            free: [const { Cell::new(ptr::null_mut()) }; CLASSES],
        }
    }

    /// Whether `p` is a block of this region.
    #[inline]
    pub fn owns(&self, p: *const u8) -> bool {
        let base = self.base.get();
        !base.is_null() && (p as usize).wrapping_sub(base as usize) < REGION
    }

    /// Whether blocks of `n` bytes are served here.
    #[inline]
    pub fn serves(n: usize) -> bool {
        (1..=SMALL_MAX).contains(&n)
    }

    /// Whether a block of `old` bytes of this region can stay where it is
    /// as a block of `new` bytes (both served here, same class).
    #[inline]
    pub fn fits(old: usize, new: usize) -> bool {
        Self::serves(old) && Self::serves(new) && class(old) == class(new)
    }

    /// A block of `n` bytes (1 ..= `SMALL_MAX`), 16-byte aligned, or null
    /// (see the module's rules).
    #[inline]
    pub fn alloc(&self, n: usize) -> *mut u8 {
        if !Self::serves(n) {
            return ptr::null_mut();
        }
        let c = class(n);
        let head = self.free[c].get();
        if !head.is_null() {
            // SAFETY: `head` is a free block of this region (at least 16
            // bytes, 16-aligned) whose first word holds the next free one.
            self.free[c].set(unsafe { head.cast::<*mut u8>().read() });
            return head;
        }
        let size = (c + 1) * GRAIN;
        let top = self.top.get();
        if top + size > REGION || (self.base.get().is_null() && !self.map()) {
            return ptr::null_mut();
        }
        self.top.set(top + size);
        // SAFETY: `top + size <= REGION`: inside the mapping.
        unsafe { self.base.get().add(top) }
    }

    /// Takes back block `p` of `n` bytes.
    ///
    /// # Safety
    ///
    /// `p` was returned by [`alloc`](Self::alloc) of this region for a
    /// size of the same class as `n` (or kept by [`fits`](Self::fits)), and
    /// is not used again.
    #[inline]
    pub unsafe fn free(&self, p: *mut u8, n: usize) {
        debug_assert!(self.owns(p) && Self::serves(n));
        let c = class(n);
        // SAFETY: the block is ours and at least 16 bytes: its first word
        // links it into the list.
        unsafe { p.cast::<*mut u8>().write(self.free[c].get()) };
        self.free[c].set(p);
    }

    fn map(&self) -> bool {
        if self.tried.replace(true) {
            return false;
        }
        if REGIONS.fetch_add(1, Ordering::Relaxed) >= MAX_REGIONS {
            REGIONS.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched. Its address is page-aligned (so 16-aligned).
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                REGION,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            REGIONS.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        self.base.set(p.cast());
        true
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let base = self.base.get();
        if !base.is_null() {
            // SAFETY: the mapping made by `map`; the state whose blocks it
            // held is closed before its region is dropped (module rules).
            unsafe { libc::munmap(base.cast(), REGION) };
            REGIONS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_16_byte_steps() {
        assert_eq!(class(1), 0);
        assert_eq!(class(16), 0);
        assert_eq!(class(17), 1);
        assert_eq!(class(512), CLASSES - 1);
        assert!(Region::fits(20, 32));
        assert!(!Region::fits(16, 17));
        assert!(!Region::fits(512, 513));
        assert!(!Region::serves(0));
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused_by_class() {
        let r = Region::new();
        let a = r.alloc(24);
        let b = r.alloc(24);
        let c = r.alloc(100);
        assert!(!a.is_null() && !b.is_null() && !c.is_null());
        for p in [a, b, c] {
            assert_eq!(p as usize % 16, 0);
            assert!(r.owns(p));
        }
        assert_eq!(b as usize - a as usize, 32);
        // SAFETY: writes inside the blocks just made.
        unsafe {
            a.write_bytes(0xaa, 24);
            b.write_bytes(0xbb, 24);
            c.write_bytes(0xcc, 100);
        }
        // SAFETY: blocks of this region, freed with sizes of their class.
        unsafe {
            r.free(a, 30);
            r.free(c, 100);
        }
        // The same class gets the freed block back; another class does not.
        assert_eq!(r.alloc(17), a);
        assert_ne!(r.alloc(40), c);
        assert_eq!(r.alloc(97), c);
        // SAFETY: `b` was not freed: its bytes are intact.
        assert!(unsafe { std::slice::from_raw_parts(b, 24) }.iter().all(|&x| x == 0xbb));
        assert!(r.alloc(SMALL_MAX + 1).is_null());
        let elsewhere = Box::new(0u64);
        assert!(!r.owns((&*elsewhere as *const u64).cast()));
    }

    #[test]
    fn a_full_region_says_so_and_still_reuses() {
        let r = Region::new();
        let mut blocks = Vec::new();
        loop {
            let p = r.alloc(SMALL_MAX);
            if p.is_null() {
                break;
            }
            blocks.push(p);
        }
        assert_eq!(blocks.len(), REGION / SMALL_MAX);
        // Full: small blocks of any class are refused...
        assert!(r.alloc(16).is_null());
        // ...until one of that class is freed.
        // SAFETY: a block of this region of the same class.
        unsafe { r.free(blocks[7], SMALL_MAX) };
        assert_eq!(r.alloc(SMALL_MAX - 3), blocks[7]);
    }

    #[test]
    fn a_region_maps_on_first_use_only() {
        let r = Region::new();
        assert!(r.alloc(SMALL_MAX + 1).is_null());
        assert!(r.base.get().is_null());
        assert!(!r.owns(ptr::null()));
        let p = r.alloc(1);
        assert_eq!(p, r.base.get());
    }
}
