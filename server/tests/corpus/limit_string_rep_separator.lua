-- expect: memory
-- limits: timeout=2000 maxmem=4096 instructions=0
-- why: a huge separator is part of the same up-front allocation, refused at the allocator
function main()
  local sep = string.rep('y', 1024 * 1024)
  return #string.rep('x', 1000, sep)
end
