-- expect: runtime
-- limits: timeout=1000 maxmem=4096 instructions=0
-- why: Lua 5.4 validates format specifications (at most two digits of width), so a huge width is an error, not a huge buffer
-- message: invalid conversion
function main()
  return string.format('%99999999d', 1)
end
