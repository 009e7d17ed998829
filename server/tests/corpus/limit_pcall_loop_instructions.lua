-- expect: instructions
-- limits: timeout=10000 maxmem=8192 instructions=1000000
-- why: the instruction budget is charged by the count hook whatever catches the error
function main()
  while true do
    pcall(function() local x = 0 while true do x = x + 1 end end)
  end
end
