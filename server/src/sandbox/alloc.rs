//! A memory-limiting allocator wrapped around the one mlua installs.
//!
//! The limit is exact: an allocation that would take the state past
//! `limit` bytes is refused at the allocator, and Lua raises a memory error.
//! Because user code can catch that error with `pcall`, the refusal is also
//! recorded in [`MemoryMeter::limit_hit`], which the executor treats as an
//! abort that cannot be caught.
//!
//! No string may hold more than the state's [`MemoryMeter::max_string`]
//! bytes (`Limits.max_string`, [`DEFAULT_MAX_STRING`] unless configured),
//! fixed when the state is made: the allocator tells a new string object
//! by the type tag Lua passes with it, and refuses one that is longer like
//! one past the limit (recorded as [`MemoryMeter::long_string`]).
//! Comparing, hashing and copying a string are single VM instructions or C
//! calls that cannot be paused, so this is what bounds them whatever
//! `maxmem` is (see SECURITY.md, "The sandbox audit"). Code that needs the
//! bound without a control block at hand (the deciders of `dispatch.rs`)
//! reads it from the state's allocator with [`max_string_of`].
//!
//! Blocks of up to 512 bytes come from the state's own [`Region`] (no
//! header per block, a free-list pop per call); larger ones, and all
//! blocks once the region is full, from the allocator mlua installed. The
//! limit counts the bytes Lua asks for either way; the region can hold at
//! most its 64 KiB beyond them (see [`super::region`]).

use std::cell::Cell;
use std::ffi::c_void;

use mlua::ffi;

use super::region::Region;

/// The longest string a state may hold unless `Limits.max_string` says
/// otherwise, in bytes (8 MiB).
pub const DEFAULT_MAX_STRING: usize = 8 << 20;

/// Bytes of a long string object beyond its characters in Lua 5.4
/// (`sizelstring`: the header and the terminating zero).
const STRING_OVERHEAD: usize = 25;

/// Whether Lua asks for a new string object longer than `max_string`
/// bytes: with no block, `osize` is the type tag of the object to make.
fn too_long_string(ptr: *mut c_void, osize: usize, nsize: usize, max_string: usize) -> bool {
    ptr.is_null() && osize == ffi::LUA_TSTRING as usize && nsize > max_string.saturating_add(STRING_OVERHEAD)
}

thread_local! {
    /// Bytes held by all Lua states of this thread (a worker's states).
    static THREAD_TOTAL: Cell<usize> = const { Cell::new(0) };
    /// Most bytes all Lua states of this thread may hold (0 = no limit).
    static THREAD_BUDGET: Cell<usize> = const { Cell::new(0) };
}

/// Caps the memory of all Lua states of the calling thread together
/// (`Limits.total_memory`, shared out between the workers). An allocation
/// beyond it is refused like one beyond the state's own limit.
pub fn set_thread_budget(bytes: usize) {
    THREAD_BUDGET.with(|b| b.set(bytes));
}

/// Bytes held by all Lua states of the calling thread.
pub fn thread_total() -> usize {
    THREAD_TOTAL.with(Cell::get)
}

/// The budget set with [`set_thread_budget`].
pub fn thread_budget() -> usize {
    THREAD_BUDGET.with(Cell::get)
}

/// Adds `delta` bytes to the total of the calling thread's states without
/// an allocation: a state that leaves a thread or joins it (`away.rs`).
pub(crate) fn charge_thread(delta: isize) {
    add_total(delta);
}

/// The calling thread's total and budget (see [`set_thread_account`]).
pub(crate) fn thread_account() -> (usize, usize) {
    (thread_total(), thread_budget())
}

/// Sets the calling thread's total and budget: a thread that steps a
/// state for another one counts against that one's (`away.rs`).
pub(crate) fn set_thread_account(total: usize, budget: usize) {
    THREAD_TOTAL.with(|t| t.set(total));
    THREAD_BUDGET.with(|b| b.set(budget));
}

fn add_total(delta: isize) {
    THREAD_TOTAL.with(|t| t.set(t.get().saturating_add_signed(delta)));
}

/// Memory accounting of one Lua state. Lives in a `Box` that outlives the
/// state (see [`super::Instance`]).
pub struct MemoryMeter {
    inner: ffi::lua_Alloc,
    inner_ud: *mut c_void,
    used: Cell<usize>,
    peak: Cell<usize>,
    limit: Cell<usize>,
    hit: Cell<bool>,
    /// The longest string the state may hold, in bytes.
    max_string: usize,
    /// The refusal was of a string longer than `max_string`.
    long_string: Cell<bool>,
    /// Size of the last refused allocation: Lua retries a refused
    /// allocation once after an emergency collection, and a retry that
    /// succeeds means the limit was not really exceeded.
    last_refused: Cell<usize>,
    /// Small blocks (see the module docs).
    region: Region,
}

impl MemoryMeter {
    fn new(inner: ffi::lua_Alloc, inner_ud: *mut c_void, used: usize, max_string: usize) -> Self {
        Self {
            inner,
            inner_ud,
            used: Cell::new(used),
            peak: Cell::new(used),
            limit: Cell::new(0),
            hit: Cell::new(false),
            max_string,
            long_string: Cell::new(false),
            last_refused: Cell::new(0),
            region: Region::new(),
        }
    }

    /// Bytes currently allocated by the state.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// Highest `used` since the last [`reset_peak`](Self::reset_peak).
    pub fn peak(&self) -> usize {
        self.peak.get()
    }

    /// Starts a new peak measurement at the current usage.
    pub fn reset_peak(&self) {
        self.peak.set(self.used.get());
    }

    /// The limit in bytes (0 = unlimited).
    pub fn limit(&self) -> usize {
        self.limit.get()
    }

    /// Sets the limit in bytes (0 = unlimited).
    pub fn set_limit(&self, bytes: usize) {
        self.limit.set(bytes);
    }

    /// Whether an allocation was refused (and not recovered by Lua's
    /// emergency collection) since the last [`clear_hit`](Self::clear_hit).
    pub fn limit_hit(&self) -> bool {
        self.hit.get()
    }

    /// The longest string the state may hold, in bytes (`Limits.max_string`).
    pub fn max_string(&self) -> usize {
        self.max_string
    }

    /// Whether the refusal behind [`limit_hit`](Self::limit_hit) was of a
    /// string longer than [`max_string`](Self::max_string).
    pub fn long_string(&self) -> bool {
        self.long_string.get()
    }

    /// Records a string longer than [`max_string`](Self::max_string) refused before it was
    /// asked for (by a sandbox function that computed its length first),
    /// as the allocator would have.
    pub fn refuse_long_string(&self) {
        self.hit.set(true);
        self.long_string.set(true);
    }

    /// Allocates or resizes as `lua_Alloc` does for `nsize > 0`: small
    /// blocks in the region, the rest through `inner`.
    ///
    /// # Safety
    ///
    /// `ptr` is null or a live block of this state of `osize` bytes.
    unsafe fn place(&self, ptr: *mut c_void, osize: usize, nsize: usize) -> *mut c_void {
        if ptr.is_null() {
            let p = self.region.alloc(nsize);
            if !p.is_null() {
                return p.cast();
            }
            // SAFETY: a fresh allocation (`osize` is Lua's type tag).
            return unsafe { (self.inner)(self.inner_ud, ptr, osize, nsize) };
        }
        if !self.region.owns(ptr.cast()) {
            // SAFETY: a block `inner` made, resized by it.
            return unsafe { (self.inner)(self.inner_ud, ptr, osize, nsize) };
        }
        if Region::fits(osize, nsize) {
            return ptr;
        }
        let mut new = self.region.alloc(nsize);
        if new.is_null() {
            // SAFETY: a fresh allocation from `inner`.
            new = unsafe { (self.inner)(self.inner_ud, std::ptr::null_mut(), 0, nsize) }.cast();
            if new.is_null() {
                // As `realloc`: the old block stays as it was.
                return std::ptr::null_mut();
            }
        }
        // SAFETY: two distinct live blocks, each at least as long as the
        // bytes copied; the old one is ours and of `osize` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new, osize.min(nsize));
            self.region.free(ptr.cast(), osize);
        }
        new.cast()
    }

    /// Frees as `lua_Alloc` does for `nsize == 0`.
    ///
    /// # Safety
    ///
    /// `ptr` is null or a live block of this state of `osize` bytes, not
    /// used again.
    unsafe fn release(&self, ptr: *mut c_void, osize: usize) -> *mut c_void {
        if self.region.owns(ptr.cast()) {
            // SAFETY: a block of the region, of `osize` bytes (caller).
            unsafe { self.region.free(ptr.cast(), osize) };
            return std::ptr::null_mut();
        }
        // SAFETY: null or a block `inner` made.
        unsafe { (self.inner)(self.inner_ud, ptr, osize, 0) }
    }

    /// Forgets an earlier refusal.
    pub fn clear_hit(&self) {
        self.hit.set(false);
        self.long_string.set(false);
        self.last_refused.set(0);
    }
}

/// Installs a [`MemoryMeter`] as the allocator of `lua`'s state, refusing
/// strings longer than `max_string` bytes.
///
/// The returned box must be kept alive until the `Lua` is dropped (the state
/// calls the allocator while it closes).
pub fn install(lua: &mlua::Lua, max_string: usize) -> mlua::Result<Box<MemoryMeter>> {
    let used = lua.used_memory();
    let mut meter: Option<Box<MemoryMeter>> = None;
    // SAFETY: `exec_raw` hands us the live state of `lua`. We read its
    // current allocator and replace it with `metered_alloc`, whose user data
    // is a boxed `MemoryMeter` that serves small blocks from its own region
    // and delegates every other call to the previous allocator; blocks are
    // told apart by address, so each is freed by the allocator that made
    // it. The box is returned to the caller, who keeps it
    // alive for as long as the state exists.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            let mut inner_ud: *mut c_void = std::ptr::null_mut();
            let inner = ffi::lua_getallocf(state, &mut inner_ud);
            let boxed = Box::new(MemoryMeter::new(inner, inner_ud, used, max_string));
            add_total(used as isize);
            let ud = &*boxed as *const MemoryMeter as *mut c_void;
            ffi::lua_setallocf(state, metered_alloc, ud);
            meter = Some(boxed);
        })?;
    }
    meter.ok_or_else(|| mlua::Error::runtime("allocator was not installed"))
}

/// The longest string `state` may hold: its meter's
/// [`max_string`](MemoryMeter::max_string), or [`DEFAULT_MAX_STRING`] for
/// a state without a meter (none of the sandbox's).
///
/// # Safety
///
/// `state` must be a live Lua state.
pub unsafe fn max_string_of(state: *mut ffi::lua_State) -> usize {
    let mut ud: *mut c_void = std::ptr::null_mut();
    // SAFETY: `state` is live (caller).
    let f = unsafe { ffi::lua_getallocf(state, &mut ud) };
    if f as *const () != metered_alloc as *const () || ud.is_null() {
        return DEFAULT_MAX_STRING;
    }
    // SAFETY: the allocator is `metered_alloc`, whose user data is the
    // state's `MemoryMeter` (see `install`), alive as long as the state.
    unsafe { &*(ud as *const MemoryMeter) }.max_string
}

unsafe extern "C" fn metered_alloc(ud: *mut c_void, ptr: *mut c_void, osize: usize, nsize: usize) -> *mut c_void {
    // SAFETY: `ud` is the `MemoryMeter` installed by `install`, alive for
    // the whole life of the state; the state is used by one thread only.
    let meter = unsafe { &*(ud as *const MemoryMeter) };
    // With a null `ptr`, `osize` encodes an object type, not a size.
    let old = if ptr.is_null() { 0 } else { osize };
    if nsize == 0 {
        // SAFETY: Lua frees a block of its state with its size.
        let r = unsafe { meter.release(ptr, osize) };
        meter.used.set(meter.used.get().saturating_sub(old));
        add_total(-(old as isize));
        return r;
    }
    if too_long_string(ptr, osize, nsize, meter.max_string) {
        meter.refuse_long_string();
        meter.last_refused.set(nsize);
        return std::ptr::null_mut();
    }
    let limit = meter.limit.get();
    let used = meter.used.get();
    let over_state = limit > 0 && used - old + nsize > limit;
    let budget = thread_budget();
    let over_thread = budget > 0 && thread_total() + nsize > budget + old;
    if nsize > old && (over_state || over_thread) {
        meter.hit.set(true);
        meter.last_refused.set(nsize);
        return std::ptr::null_mut();
    }
    // SAFETY: Lua passes null or a block of its state with its size.
    let r = unsafe { meter.place(ptr, osize, nsize) };
    if !r.is_null() {
        if meter.last_refused.get() == nsize && meter.hit.get() {
            // Lua's emergency collection made room: not a real failure.
            meter.hit.set(false);
        }
        meter.last_refused.set(0);
        let now = used - old + nsize;
        meter.used.set(now);
        add_total(nsize as isize - old as isize);
        if now > meter.peak.get() {
            meter.peak.set(now);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::region::{REGION, SMALL_MAX};

    /// Counts what reaches the allocator behind the meter.
    #[derive(Default)]
    struct Inner {
        allocs: Cell<usize>,
        reallocs: Cell<usize>,
        frees: Cell<usize>,
    }

    unsafe extern "C" fn inner(ud: *mut c_void, ptr: *mut c_void, _osize: usize, nsize: usize) -> *mut c_void {
        // SAFETY: `ud` is the test's `Inner`, alive for the whole test.
        let c = unsafe { &*(ud as *const Inner) };
        // SAFETY: the C allocator, for blocks it made (the tests pass only
        // those to it through the meter).
        unsafe {
            if nsize == 0 {
                if !ptr.is_null() {
                    c.frees.set(c.frees.get() + 1);
                }
                libc::free(ptr);
                std::ptr::null_mut()
            } else if ptr.is_null() {
                c.allocs.set(c.allocs.get() + 1);
                libc::malloc(nsize)
            } else {
                c.reallocs.set(c.reallocs.get() + 1);
                libc::realloc(ptr, nsize)
            }
        }
    }

    fn call(m: &MemoryMeter, ptr: *mut c_void, osize: usize, nsize: usize) -> *mut c_void {
        // SAFETY: the tests pass null or live blocks of this meter with
        // their sizes, as Lua does.
        unsafe { metered_alloc(m as *const MemoryMeter as *mut c_void, ptr, osize, nsize) }
    }

    #[test]
    fn small_blocks_stay_in_the_region_and_large_ones_go_behind_it() {
        let c = Inner::default();
        let m = MemoryMeter::new(inner, &c as *const Inner as *mut c_void, 0, DEFAULT_MAX_STRING);
        // A new small block (osize is Lua's type tag) comes from the region.
        let a = call(&m, std::ptr::null_mut(), 4, 40);
        assert!(m.region.owns(a.cast()));
        assert_eq!(c.allocs.get(), 0);
        // SAFETY: a live block of 40 bytes.
        unsafe { a.cast::<u8>().write_bytes(7, 40) };
        // Grown within its class: the same block.
        assert_eq!(call(&m, a, 40, 48), a);
        // Grown past the region's sizes: moved behind it, contents kept.
        let b = call(&m, a, 48, SMALL_MAX + 100);
        assert!(!m.region.owns(b.cast()));
        assert_eq!(c.allocs.get(), 1);
        // SAFETY: the first 48 bytes were copied from `a`.
        assert!(unsafe { std::slice::from_raw_parts(b.cast::<u8>(), 40) }.iter().all(|&x| x == 7));
        // `a`'s block went back to its class.
        assert_eq!(call(&m, std::ptr::null_mut(), 0, 33), a);
        // A block behind the region is resized there, even when small.
        let b = call(&m, b, SMALL_MAX + 100, 20);
        assert!(!m.region.owns(b.cast()));
        assert_eq!(c.reallocs.get(), 1);
        call(&m, b, 20, 0);
        assert_eq!(c.frees.get(), 1);
        call(&m, a, 33, 0);
        assert_eq!(c.frees.get(), 1);
        // The meter counts what Lua asked for, wherever it lives.
        assert_eq!(m.used(), 0);
        assert_eq!(m.peak(), SMALL_MAX + 100 + 33);
    }

    #[test]
    fn a_full_region_falls_back_and_frees_each_block_where_it_was_made() {
        let c = Inner::default();
        let m = MemoryMeter::new(inner, &c as *const Inner as *mut c_void, 0, DEFAULT_MAX_STRING);
        let n = REGION / 64 + 10;
        let blocks: Vec<_> = (0..n).map(|_| call(&m, std::ptr::null_mut(), 0, 64)).collect();
        let behind = blocks.iter().filter(|p| !m.region.owns(p.cast())).count();
        assert_eq!(behind, 10);
        assert_eq!(c.allocs.get(), 10);
        assert_eq!(m.used(), n * 64);
        for p in blocks {
            call(&m, p, 64, 0);
        }
        assert_eq!(c.frees.get(), 10);
        assert_eq!(m.used(), 0);
    }

    #[test]
    fn the_limit_still_refuses_before_any_allocator_is_asked() {
        let c = Inner::default();
        let m = MemoryMeter::new(inner, &c as *const Inner as *mut c_void, 0, DEFAULT_MAX_STRING);
        m.set_limit(100);
        let a = call(&m, std::ptr::null_mut(), 0, 64);
        assert!(!a.is_null());
        assert!(call(&m, std::ptr::null_mut(), 0, 64).is_null());
        assert!(m.limit_hit());
        assert_eq!(m.used(), 64);
        call(&m, a, 64, 0);
    }

    #[test]
    fn strings_longer_than_max_string_are_refused() {
        const MAX_STRING: usize = 3 << 20;
        let c = Inner::default();
        let m = MemoryMeter::new(inner, &c as *const Inner as *mut c_void, 0, MAX_STRING);
        assert_eq!(m.max_string(), MAX_STRING);
        let tag = ffi::LUA_TSTRING as usize;
        // Other blocks of that size are not strings.
        let big = call(&m, std::ptr::null_mut(), 0, MAX_STRING + 4096);
        assert!(!big.is_null() && !m.limit_hit());
        call(&m, big, MAX_STRING + 4096, 0);
        let s = call(&m, std::ptr::null_mut(), tag, MAX_STRING + STRING_OVERHEAD);
        assert!(!s.is_null() && !m.limit_hit());
        call(&m, s, MAX_STRING + STRING_OVERHEAD, 0);
        assert!(call(&m, std::ptr::null_mut(), tag, MAX_STRING + STRING_OVERHEAD + 1).is_null());
        assert!(m.limit_hit() && m.long_string());
        m.clear_hit();
        assert!(!m.limit_hit() && !m.long_string());
    }
}
