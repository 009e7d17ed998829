-- expect: memory
-- limits: timeout=2000 maxmem=4096 instructions=0
-- why: string.rep allocates its whole result (1 GiB here; above 2 GiB it is an ordinary 'resulting string too large' error) up front; the allocator refuses the block beyond maxmem
function main()
  local s = string.rep('x', 1 << 30)
  return #s
end
