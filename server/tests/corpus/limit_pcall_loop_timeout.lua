-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: pcall cannot catch the timeout abort: the hook raises it on every instruction from then on and the pcall wrapper re-raises it
function main()
  while true do
    pcall(function() while true do end end)
  end
end
