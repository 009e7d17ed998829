//! `table.insert`, `remove`, `concat`, `sort` and `move` that stay in C
//! where that is safe and run in Lua where it is not.
//!
//! Lua's table functions loop in C, where the instruction hook never fires.
//! On a plain table (one without a metatable) the loop is bounded by the
//! table's real contents, so the C function runs, unchanged and at full
//! speed. With a metatable, `__len`, `__index` and `__newindex` can make the
//! same loop run for ever without one VM instruction or one allocation, and
//! metamethods called from C cannot be paused. So there, and for sorts and
//! moves too big to hold the reactor for, the call goes to a Lua version of
//! the function (written in the prelude), which the hook bounds and pauses
//! like any user code.
//!
//! A dispatcher is a C closure with two upvalues: the C function and the Lua
//! version. It calls the C function directly with its own stack (the C
//! table functions have no upvalues, and their error messages then name the
//! function as the caller called it), or calls the Lua version with
//! `lua_callk`, so that it may yield.

use std::ffi::c_int;

use mlua::{ffi, Function, Lua};

/// Items up to which a plain table is sorted in C (without a comparator).
pub const C_SORT_MAX: usize = 4096;

/// Items up to which a move between plain tables runs in C.
pub const C_MOVE_MAX: i64 = 4096;

/// The table functions with a dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFn {
    Insert,
    Remove,
    Concat,
    Sort,
    Move,
}

impl TableFn {
    /// The function of the same name in the `table` library.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "insert" => Self::Insert,
            "remove" => Self::Remove,
            "concat" => Self::Concat,
            "sort" => Self::Sort,
            "move" => Self::Move,
            _ => return None,
        })
    }
}

/// A table function that runs `c_fn` where it is safe and `lua_fn`
/// elsewhere (see the module docs).
pub fn dispatcher(lua: &Lua, which: TableFn, c_fn: Function, lua_fn: Function) -> mlua::Result<Function> {
    let f: ffi::lua_CFunction = match which {
        TableFn::Insert => dispatch_insert,
        TableFn::Remove => dispatch_remove,
        TableFn::Concat => dispatch_concat,
        TableFn::Sort => dispatch_sort,
        TableFn::Move => dispatch_move,
    };
    // SAFETY: `exec_raw` runs the closure on a stack holding exactly the two
    // functions passed; `lua_pushcclosure` pops them as the upvalues of the
    // new closure and leaves it as the one result.
    unsafe { lua.exec_raw((c_fn, lua_fn), |state| ffi::lua_pushcclosure(state, f, 2)) }
}

/// Whether the value at `idx` is anything but a table, or a table without
/// a metatable. (Non-tables go to the C function for its error message.)
///
/// # Safety
/// `state` must be a live Lua state with a value at `idx`.
unsafe fn plain(state: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: guaranteed by the caller; `lua_getmetatable` pushes the
    // metatable only when there is one, and we pop it.
    unsafe {
        if ffi::lua_type(state, idx) != ffi::LUA_TTABLE {
            return true;
        }
        if ffi::lua_getmetatable(state, idx) == 0 {
            return true;
        }
        ffi::lua_pop(state, 1);
        false
    }
}

/// Whether `f(a1, f, e, t, a2)` of `table.move` may run in C.
///
/// # Safety
/// `state` must be the stack of a call of the dispatcher.
unsafe fn move_in_c(state: *mut ffi::lua_State) -> bool {
    // SAFETY: guaranteed by the caller; indexes past the top read as none.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            return true;
        }
        let a2_plain =
            ffi::lua_isnoneornil(state, 5) != 0 || (ffi::lua_type(state, 5) == ffi::LUA_TTABLE && plain(state, 5));
        if !plain(state, 1) || !a2_plain || ffi::lua_isinteger(state, 2) == 0 || ffi::lua_isinteger(state, 3) == 0 {
            return false;
        }
        let (f, e) = (ffi::lua_tointeger(state, 2), ffi::lua_tointeger(state, 3));
        // An overflowing range is one C refuses ("too many elements").
        e < f || e.checked_sub(f).is_none_or(|n| n < C_MOVE_MAX)
    }
}

/// Whether `table.sort(t, comp)` may run in C.
///
/// # Safety
/// `state` must be the stack of a call of the dispatcher.
unsafe fn sort_in_c(state: *mut ffi::lua_State) -> bool {
    // SAFETY: guaranteed by the caller.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            return true;
        }
        match ffi::lua_type(state, 2) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => plain(state, 1) && ffi::lua_rawlen(state, 1) <= C_SORT_MAX,
            ffi::LUA_TFUNCTION => false,
            _ => true, // C's "function expected" error
        }
    }
}

/// # Safety
/// Called by Lua as a C closure made by [`dispatcher`].
unsafe fn dispatch(state: *mut ffi::lua_State, in_c: bool) -> c_int {
    // SAFETY: the closure's upvalues are the C function and the Lua
    // version (see `dispatcher`). Calling the C function directly runs it on
    // this call's stack, as if Lua had called it; it uses no upvalues.
    unsafe {
        if in_c {
            if let Some(c_fn) = ffi::lua_tocfunction(state, ffi::lua_upvalueindex(1)) {
                return c_fn(state);
            }
        }
        let nargs = ffi::lua_gettop(state);
        ffi::luaL_checkstack(state, 1, std::ptr::null());
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
        ffi::lua_insert(state, 1);
        ffi::lua_callk(state, nargs, ffi::LUA_MULTRET, 0, Some(all_results));
        ffi::lua_gettop(state)
    }
}

/// The continuation after the Lua version yielded: return what it did.
unsafe extern "C-unwind" fn all_results(state: *mut ffi::lua_State, _status: c_int, _ctx: ffi::lua_KContext) -> c_int {
    // SAFETY: Lua calls the continuation with the results on the stack.
    unsafe { ffi::lua_gettop(state) }
}

unsafe extern "C-unwind" fn dispatch_insert(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a live stack.
    unsafe { dispatch(state, plain(state, 1)) }
}

unsafe extern "C-unwind" fn dispatch_remove(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a live stack.
    unsafe { dispatch(state, plain(state, 1)) }
}

unsafe extern "C-unwind" fn dispatch_concat(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a live stack.
    unsafe { dispatch(state, plain(state, 1)) }
}

unsafe extern "C-unwind" fn dispatch_sort(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a live stack.
    unsafe { dispatch(state, sort_in_c(state)) }
}

unsafe extern "C-unwind" fn dispatch_move(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a live stack.
    unsafe { dispatch(state, move_in_c(state)) }
}
