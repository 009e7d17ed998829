-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the string table behind the (hidden) string metatable belongs to this state only: replacing string.rep changes ('a'):rep here and nowhere else
-- result: "pwned"
function main()
  string.rep = function() return 'pwned' end
  return ('a'):rep(3)
end
