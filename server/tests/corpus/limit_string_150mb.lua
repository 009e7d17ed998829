-- expect: memory
-- limits: timeout=3000 maxmem=65536 instructions=0
-- why: with maxmem at 1 GiB (max_maxmem then), two 150 MB strings compared in a loop froze the server for 16 s and the timeout fired 13 s late; no string may now be longer than 8 MiB, whatever maxmem, so every comparison, copy and hash of one is bounded
-- message: 8 MiB
function main()
  local a = 'x'
  for i = 1, 27 do a = a .. a end
  local b = a .. 'y'
  local n = 0
  while true do
    if a == b then n = n + 1 end
  end
end
