-- expect: instructions
-- limits: timeout=10000 maxmem=8192 instructions=1000000
-- why: instructions run in a coroutine are charged to the same invocation budget
function main()
  local co = coroutine.wrap(function() local x = 0 while true do x = x + 1 end end)
  while true do pcall(co) end
end
