//! A memory-limiting allocator wrapped around the one mlua installs.
//!
//! The limit is exact: an allocation that would take the state past
//! `limit` bytes is refused at the allocator, and Lua raises a memory error.
//! Because user code can catch that error with `pcall`, the refusal is also
//! recorded in [`MemoryMeter::limit_hit`], which the executor treats as an
//! abort that cannot be caught.

use std::cell::Cell;
use std::ffi::c_void;

use mlua::ffi;

thread_local! {
    /// Bytes held by all Lua states of this thread (a reactor's states).
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
    /// Size of the last refused allocation: Lua retries a refused
    /// allocation once after an emergency collection, and a retry that
    /// succeeds means the limit was not really exceeded.
    last_refused: Cell<usize>,
}

impl MemoryMeter {
    fn new(inner: ffi::lua_Alloc, inner_ud: *mut c_void, used: usize) -> Self {
        Self {
            inner,
            inner_ud,
            used: Cell::new(used),
            peak: Cell::new(used),
            limit: Cell::new(0),
            hit: Cell::new(false),
            last_refused: Cell::new(0),
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

    /// Forgets an earlier refusal.
    pub fn clear_hit(&self) {
        self.hit.set(false);
        self.last_refused.set(0);
    }
}

/// Installs a [`MemoryMeter`] as the allocator of `lua`'s state.
///
/// The returned box must be kept alive until the `Lua` is dropped (the state
/// calls the allocator while it closes).
pub fn install(lua: &mlua::Lua) -> mlua::Result<Box<MemoryMeter>> {
    let used = lua.used_memory();
    let mut meter: Option<Box<MemoryMeter>> = None;
    // SAFETY: `exec_raw` hands us the live state of `lua`. We read its
    // current allocator and replace it with `metered_alloc`, whose user data
    // is a boxed `MemoryMeter` that delegates every call to the previous
    // allocator, so every block is still allocated and freed by the same
    // underlying function. The box is returned to the caller, who keeps it
    // alive for as long as the state exists.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            let mut inner_ud: *mut c_void = std::ptr::null_mut();
            let inner = ffi::lua_getallocf(state, &mut inner_ud);
            let boxed = Box::new(MemoryMeter::new(inner, inner_ud, used));
            add_total(used as isize);
            let ud = &*boxed as *const MemoryMeter as *mut c_void;
            ffi::lua_setallocf(state, metered_alloc, ud);
            meter = Some(boxed);
        })?;
    }
    meter.ok_or_else(|| mlua::Error::runtime("allocator was not installed"))
}

unsafe extern "C" fn metered_alloc(ud: *mut c_void, ptr: *mut c_void, osize: usize, nsize: usize) -> *mut c_void {
    // SAFETY: `ud` is the `MemoryMeter` installed by `install`, alive for
    // the whole life of the state; the state is used by one thread only.
    let meter = unsafe { &*(ud as *const MemoryMeter) };
    // With a null `ptr`, `osize` encodes an object type, not a size.
    let old = if ptr.is_null() { 0 } else { osize };
    if nsize == 0 {
        // SAFETY: delegating a free to the allocator that made the block.
        let r = unsafe { (meter.inner)(meter.inner_ud, ptr, osize, nsize) };
        meter.used.set(meter.used.get().saturating_sub(old));
        add_total(-(old as isize));
        return r;
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
    // SAFETY: delegating an allocation or reallocation to the allocator that
    // made `ptr` (if any).
    let r = unsafe { (meter.inner)(meter.inner_ud, ptr, osize, nsize) };
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
