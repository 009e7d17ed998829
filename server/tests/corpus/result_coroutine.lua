-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: coroutines (Lua threads) have no JSON form; the server never resumes a returned coroutine
-- message: thread has no JSON form
function main()
  return {co = coroutine.create(function() while true do end end)}
end
