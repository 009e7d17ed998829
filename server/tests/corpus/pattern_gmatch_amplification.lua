-- expect: ok|memory
-- limits: timeout=3000 maxmem=4096 instructions=0
-- why: maxmem must bound what an action can make the server hold: 200 gmatch iterators over one 1 MiB string are either cheap (sharing the string) or refused; the runner also checks that the server's RSS grows by no more than about twice maxmem
-- result: 200
function main()
  local s = string.rep('x', 1024 * 1024)
  local iters = {}
  for i = 1, 200 do iters[i] = string.gmatch(s, 'y') end
  return #iters
end
