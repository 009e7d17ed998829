-- expect: timeout|memory
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout|memory
-- why: string.upper, lower and reverse work byte by byte in C, about 15 ms for 8 MiB in one call that cannot be paused; a loop of them froze the server between hook firings; the sandbox does strings of more than 256 KiB in pieces (three 8 MiB results at once may pass the default maxmem first)
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  while true do
    local u, l, r = a:upper(), a:lower(), a:reverse()
  end
end
