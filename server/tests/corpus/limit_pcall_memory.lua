-- expect: memory
-- limits: timeout=2000 maxmem=4096 instructions=0
-- why: a refused allocation is recorded by the meter; the pcall wrapper's guard turns the caught memory error into the memory abort
function main()
  local ok = pcall(string.rep, 'x', 64 * 1024 * 1024)
  return 'survived: ' .. tostring(ok)
end
