-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: nesting pcall in pcall changes nothing: every level's wrapper calls guard() and re-raises
function main()
  while true do
    pcall(pcall, pcall, function() while true do end end)
  end
end
