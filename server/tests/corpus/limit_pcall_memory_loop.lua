-- expect: memory
-- limits: timeout=5000 maxmem=2048 instructions=0
-- why: growing memory in a pcall loop hits maxmem at the allocator; catching the error does not reset the meter's hit flag
function main()
  local keep = {}
  while true do
    pcall(function() for i = 1, 1000 do keep[#keep + 1] = {i} end end)
  end
end
