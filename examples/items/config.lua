-- The tutorial's server (README.md, "Building apps"). From the repository
-- root, after `cargo build --release --workspace`:
--   target/release/slserver --config examples/items/config.lua
-- Paths of Sqlite and Plugin files are relative to this file's directory;
-- the kv plugin's own `path` is relative to where slserver was started.

Server { host = "127.0.0.1", port = 8080 }
Routes { port = 8081 }
Sqlite { path = "data/sl.db" }
Plugin "kv" { file = "../../target/release/libsl_kv.so", path = "examples/items/data/kv.db" }
