-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the string metatable is hidden (__metatable = false): getmetatable('') gives false, and neither it nor setmetatable on a string reaches the real one
-- result: {"meta":"false","index":false,"set":false,"raw":false,"method":"aaa"}
function main()
  return {
    meta = tostring(getmetatable('')),
    index = (pcall(function() return getmetatable('abc').__index end)),
    set = (pcall(setmetatable, '', {__index = {rep = function() return 'pwned' end}})),
    raw = (pcall(rawget, getmetatable(''), '__index')),
    method = ('a'):rep(3),
  }
end
