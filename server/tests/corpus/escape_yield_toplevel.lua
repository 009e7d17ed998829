-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: yielding from main's own thread reaches the executor, which only accepts its private preempt and call markers
-- message: outside a coroutine
function main()
  coroutine.yield('CALL', 'skeleton', 'add', {x = 1, y = 2})
  return 'resumed'
end
