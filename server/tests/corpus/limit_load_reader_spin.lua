-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: a load reader function is Lua code under the hook; load catches the abort error but the hook fires again on the next instruction, and the server must keep serving others meanwhile
function main()
  local f = load(function() while true do end end)
  return tostring(f)
end
