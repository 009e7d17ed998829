-- expect: timeout
-- limits: timeout=500 maxmem=0 instructions=0
-- atmax: timeout
-- why: < and <= of two long strings with a common prefix compare them byte by byte (strcoll) in one instruction; as limit_string_eq_long
function main()
  local a = 'x'
  for i = 1, 23 do a = a .. a end
  local b = a:sub(1, -2) .. 'y'
  local n = 0
  while true do
    if a < b and a <= b then n = n + 1 end
  end
end
