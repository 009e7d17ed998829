-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: a message handler that spins after an ordinary error is stopped by the timeout; it runs inside the C error machinery where the hook cannot yield, which must not stop the server from serving others meanwhile
function main()
  xpcall(error, function() while true do end end)
  return 'handler returned'
end
