-- wrk script for bench/run, scenario 11 (#18): publishes batches of
-- $WRK_BATCH (100) messages (the URL is /topics/NAME/batch), each message
-- $WRK_BODY with a new key, and prints the summary of summary.lua (its
-- figures are per batch).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "publish.lua")
local size = tonumber(os.getenv("WRK_BATCH") or "100")

function request()
  local items = {}
  for i = 1, size do
    items[i] = '{"key":"' .. next_key() .. '","payload":' .. body .. '}'
  end
  return wrk.format("POST", wrk.path, headers, "[" .. table.concat(items, ",") .. "]")
end
