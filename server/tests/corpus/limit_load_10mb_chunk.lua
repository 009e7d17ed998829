-- expect: timeout
-- limits: timeout=300 maxmem=65536 instructions=0
-- why: the timeout bounds the whole invocation, including the compile of a 10 MB chunk by load; the Lua parser runs in C without the hook, so it must be fed in slices or charged, and a result must not be accepted after the deadline
function main()
  local src = 'local x = 0\n' .. string.rep('x = x + 1\n', 1000000) .. 'return x'
  local f = load(src)
  return 'compiled: ' .. type(f)
end
