-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: rawset needs the metatable itself, and getmetatable('') only gives false
-- message: table expected
function main()
  rawset(getmetatable(''), '__index', {rep = function() return 'pwned' end})
  return ('a'):rep(3)
end
