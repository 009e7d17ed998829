-- expect: memory
-- limits: timeout=5000 maxmem=1024 instructions=0
-- why: the output of gsub counts against maxmem while it is built, before it becomes a Lua string
function main()
  local s = string.rep('x', 10000)
  return #string.gsub(s, 'x', string.rep('y', 10000))
end
