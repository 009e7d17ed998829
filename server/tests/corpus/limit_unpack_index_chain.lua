-- expect: timeout
-- limits: timeout=200 maxmem=0 instructions=0
-- atmax: timeout
-- why: table.unpack reads each item with lua_geti, which walks an __index chain of tables (up to Lua's 2,000 links) without an instruction: a million items down a 2,000-table chain froze the server for about 20 s; the sandbox reads the items of a table with __index in Lua, one instruction each (and at most 65,536 of them a call)
function main()
  local t = {}
  for i = 1, 1999 do t = setmetatable({}, {__index = t}) end
  while true do
    local n = select('#', table.unpack(t, 1, 65536))
  end
end
