-- expect: timeout
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout
-- why: string.format('%q', s) escapes byte by byte in C (about 40 ms for 8 MiB); the sandbox quotes long strings in pieces, and refuses a result longer than 8 MiB before building it (this one, about 5.5 MB, is made again and again)
function main()
  local a = ('\n'):rep(10) .. 'x'
  for i = 1, 18 do a = a .. a end
  while true do
    local q = string.format('%q', a)
  end
end
