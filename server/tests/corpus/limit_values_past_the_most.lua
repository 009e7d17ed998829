-- expect: timeout
-- limits: timeout=300 maxmem=0 instructions=0
-- atmax: timeout
-- why: one value more than a library call may return (65,536) is an ordinary error, raised before any work (string.byte, utf8.codepoint, table.unpack of a table, of a table with __len, of a string, string.unpack), so a pcall loop of them is VM instructions and ends at its timeout
function main()
  local a = ('a'):rep(1000000)
  local big = setmetatable({}, {__len = function() return 1000000 end})
  local t = {}
  for i = 1, 70000 do t[i] = i end
  local fmt = ('b'):rep(70000)
  local fails = 0
  while true do
    for _, f in ipairs({
      function() return a:byte(1, -1) end,
      function() return utf8.codepoint(a, 1, -1) end,
      function() return table.unpack(t) end,
      function() return table.unpack(big) end,
      function() return table.unpack(a, 1, #a) end,
      function() return string.unpack(fmt, a) end,
    }) do
      if not pcall(f) then fails = fails + 1 end
    end
  end
end
