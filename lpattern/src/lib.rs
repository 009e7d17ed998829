//! Lua patterns with a step budget.
