-- expect: timeout|instructions|memory
-- limits: timeout=200 maxmem=4096 instructions=0
-- why: table.concat over a huge range whose items come from a C function in __index (table.concat itself returns '' for an empty table) allocates nothing and runs no VM instruction in Lua's C function; on a table with a metatable the sandbox runs its Lua version instead, which the hook bounds: the timeout (or the memory limit, as the collected parts grow) must stop it, whichever comes first
function main()
  local t = setmetatable({}, {__index = table.concat})
  return #table.concat(t, '', 1, math.maxinteger)
end
