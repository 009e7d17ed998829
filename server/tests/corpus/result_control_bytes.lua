-- expect: too_large
-- limits: timeout=2000 maxmem=0 instructions=0
-- server: max_response=1048576
-- message: Server.max_response = 1048576 bytes
-- why: a result of 4 MB of control bytes is 24 MB as JSON (each byte becomes \u0001), outside every limit of the action; the answer is bounded by Server.max_response (1 MiB here), found out after encoding at most that much, not encoded and copied whole on the loop
function main()
  return string.rep('\1', 4000000)
end
