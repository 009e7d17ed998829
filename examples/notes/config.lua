-- The server of the notes app (README.md, "Events"). From the repository
-- root, after `cargo build --release --workspace`:
--   slserver --config examples/notes/config.lua
-- This file is the server's configuration, not an action: slcli deploy,
-- dev and test skip config.lua at the top of an app directory.
--
-- NOTES_DATA names the data directory, beside this file: "data" unless set
-- (the tests run on a server of their own: NOTES_DATA=test-data). Sqlite's
-- path and the plugin's file are relative to this file's directory; the kv
-- plugin's own `path` is relative to where slserver was started (the
-- repository root).

local data = os.getenv("NOTES_DATA") or "data"
if not data:match("^[%w_.-]+$") or data == "." or data == ".." then
  error("NOTES_DATA must name a directory beside config.lua, such as test-data, not '" .. data .. "'")
end

Server { host = "127.0.0.1", port = 8080 }
Routes { port = 8081 }
Sqlite { path = data .. "/sl.db" }
Plugin "kv" { file = "../../target/release/libsl_kv.so", path = "examples/notes/" .. data .. "/kv.db" }
