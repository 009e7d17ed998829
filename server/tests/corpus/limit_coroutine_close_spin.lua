-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: coroutine.close runs pending __close handlers (not wrapped by the sandbox); a spinning handler is stopped by the timeout, and the server must keep serving others meanwhile
function main()
  local co = coroutine.create(function()
    local x <close> = setmetatable({}, {__close = function() while true do end end})
    coroutine.yield()
  end)
  coroutine.resume(co)
  coroutine.close(co)
  return 'closed'
end
