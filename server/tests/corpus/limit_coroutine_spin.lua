-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: coroutines inherit the hook, and the coroutine.resume wrapper re-raises the abort in the resumer
function main()
  while true do
    local co = coroutine.create(function() while true do end end)
    coroutine.resume(co)
  end
end
