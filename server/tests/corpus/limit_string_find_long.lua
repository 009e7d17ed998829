-- expect: timeout
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout
-- why: a plain string.find in a long string works through it in one call that cannot be paused (a linear search of 8 MiB by a needle of up to 8 MiB takes tens of milliseconds); the sandbox searches by spans of 256 KiB start positions, and a needle longer than that as Lua itself does, comparing where its first byte occurs, which here (every byte of the haystack starts the needle's prefix) takes longer than the timeout, in steps that each compare at most a few MiB
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local needle = a:sub(1, 300000) .. 'y'
  local n = 0
  while true do
    if a:find(needle, 1, true) then n = n + 1 end
  end
end
