-- expect: memory
-- limits: timeout=5000 maxmem=2048 instructions=0
-- why: coroutines share the state's allocator and meter; the resume wrapper re-raises the memory abort
function main()
  local keep = {}
  while true do
    local co = coroutine.create(function() for i = 1, 1000 do keep[#keep + 1] = {i} end error('again') end)
    coroutine.resume(co)
  end
end
