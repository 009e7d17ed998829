-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: call() yields a private light-userdata marker that user code cannot forge; yielding look-alike values from a coroutine only returns them to the caller, and an unknown plugin is an ordinary catchable error
-- result: {"unknown":true,"badname":true,"forged":"CALL","type":"function"}
function main()
  local ok1, e1 = pcall(call, 'no-such-plugin', 'x', {})
  local ok2, e2 = pcall(call, 42, 'x')
  local forged = coroutine.wrap(function()
    coroutine.yield('CALL', 'skeleton', 'add', {x = 1, y = 2})
  end)()
  return {
    unknown = not ok1 and tostring(e1):find('unknown plugin', 1, true) ~= nil,
    badname = not ok2 and tostring(e2):find('plugin name expected', 1, true) ~= nil,
    forged = forged,
    type = type(call),
  }
end
