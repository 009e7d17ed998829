-- expect: timeout
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout
-- why: utf8.len decodes the whole string in C; the sandbox counts strings of more than 256 KiB in pieces
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local n = 0
  while true do
    n = n + utf8.len(a)
  end
end
