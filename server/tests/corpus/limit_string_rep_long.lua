-- expect: timeout
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout
-- why: string.rep of a one-byte string copies it byte by byte (about 40 ms for 8 MiB, in one call); the sandbox builds long results by doubling with .., an instruction each
function main()
  while true do
    local s = string.rep('x', 8 * 1024 * 1024)
  end
end
