-- expect: timeout
-- limits: timeout=200 maxmem=8192 instructions=0
-- why: the gsub replacement function runs under the hook (called from the Rust gsub, where it cannot yield); the timeout stops it and the server must keep serving others meanwhile
function main()
  while true do
    pcall(string.gsub, 'aaaa', 'a', function() while true do end end)
  end
end
