-- expect: ok
-- limits: timeout=5000 maxmem=0 instructions=0
-- result: {"found": false, "len": 8388607}
-- why: one anchored find over 8 MiB needs about 130 ms of matching in Lua, far more than a time slice and the 20 ms stall bound; it is paused at the end of each slice and gives Lua's answer, while the server keeps serving others
function main()
  local s = ('a'):rep((8 << 20) - 1)
  local m = string.find(s, '^a*.?b$')
  local c = #string.match(s .. 'b', '^(a*).?b$')
  return {found = m ~= nil, len = c}
end
