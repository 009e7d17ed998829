-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: a finalizer must never run; the loop waiting for one must end at the timeout. Decoded JSON arrays share a metatable that getmetatable returns unprotected; if __gc can be added to it, the arrays decoded afterwards get finalizers, which run with hooks off and outlive every limit
function main()
  pcall(function()
    getmetatable(json.decode('[]')).__gc = function()
      local t0 = os.clock()
      while os.clock() - t0 < 0.3 do end
      fired = true
    end
  end)
  local x = json.decode('[1]')
  x = nil
  while not fired do local garbage = {} end
  return 'a finalizer ran outside the limits'
end
