-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: catching the abort inside a wrapped coroutine and again around it does not help: every pcall and resume wrapper re-raises
function main()
  local co = coroutine.wrap(function()
    while true do pcall(function() while true do end end) end
  end)
  while true do pcall(co) end
end
