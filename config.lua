-- SL example configuration. Every block and setting is optional; the
-- values below are the defaults. Relative paths are resolved against the
-- directory of this file. See README.md ("Configuration") for every setting.

Server {
  host = "127.0.0.1",     -- listen address (loopback only by default)
  port = 8080,
}

Logger { level = "info" } -- error, warn, info, debug or trace (SL_LOG overrides)

Sqlite { path = "data/sl.db" }   -- the embedded store; or: Nulldb {} (in memory). Add synchronous = "full"
                                 --   for commits that survive a power loss (README, "Asynchronous invocations")

Limits {
  maxmem = 65536,              -- default KiB of Lua heap per action
  instructions = 100000000,    -- default VM instruction budget per invocation
  timeout = 5000,              -- default ms of wall-clock time per invocation
  max_maxmem = 65536,          -- the most maxmem an action may ask for (64 MiB)
  offload_heap = 8192,         -- KiB of heap past which an invocation runs off the event loop: some steps of
                               --   the VM that cannot be paused (a table's rehash, the collector's atomic
                               --   step) take time in proportion to the heap; see README, "Limits"
  max_instructions = 10000000000,
  max_timeout = 300000,
  max_string = 8192,           -- KiB of the longest string (64 to 1048576): one ==, hash or .. of a
                               --   string cannot be paused, so this bounds one instruction (a few ms at 8 MiB)
}

-- Plugins, after `cargo build --release --workspace` (see README.md, "Plugins"):
-- Plugin "skeleton" { file = "target/release/libsl_skeleton.so" }
-- Plugin "http"     { file = "target/release/libsl_http.so", timeout = 5000 }

Routes { port = 8081 }          -- serve routes on 127.0.0.1:8081 (README, "Building apps")

Invocations {
  retention = 604800,          -- seconds finished invocation records are kept
  concurrency = 16,            -- asynchronous invocations run at once
}
