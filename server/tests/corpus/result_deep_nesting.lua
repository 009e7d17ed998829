-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: results nested deeper than 100 levels are refused with a clear error
-- message: deeper than 100 levels
function main()
  local t = {}
  for i = 1, 100000 do t = {t} end
  return t
end
