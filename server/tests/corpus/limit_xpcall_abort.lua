-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: the xpcall wrapper calls guard() before the message handler, so a spinning handler never runs after the abort, and xpcall re-raises; with 500 globals defined, the handling of the abort must still end promptly (each error raised from a Rust function carries a traceback whose function names are looked up among all globals, and the handler is re-entered for every error it raises)
function main()
  for i = 1, 500 do _G['global' .. i] = i end
  while true do
    xpcall(function() while true do end end, function() while true do end end)
  end
end
