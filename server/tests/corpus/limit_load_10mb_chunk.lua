-- expect: timeout
-- limits: timeout=300 maxmem=65536 instructions=0
-- why: the timeout bounds the whole invocation, including the compile of an 8 MB chunk by load (nearly the longest string there may be: 8 MiB); the Lua parser runs in C without the hook, so it must be fed in slices or charged, and a result must not be accepted after the deadline
function main()
  local src = 'local x = 0\n' .. string.rep('x = x + 1\n', 800000) .. 'return x'
  local f = load(src)
  return 'compiled: ' .. type(f)
end
