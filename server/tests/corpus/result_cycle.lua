-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: a result with a cycle is cut at the nesting limit of 100 levels and reported, never followed forever
-- message: deeper than 100 levels
function main()
  local t = {}
  t.self = t
  return t
end
