-- expect: memory|timeout
-- limits: timeout=3000 maxmem=0 instructions=0
-- atmax: memory|timeout
-- why: the state of a failed invocation holds its heap as millions of small tables; freeing it (lua_close, after the answer is sent) takes time in proportion to what it holds, so max_maxmem bounds it (at 400 MiB it delayed a ping by 110 ms)
function main()
  local t = {}
  while true do t[#t + 1] = {} end
end
