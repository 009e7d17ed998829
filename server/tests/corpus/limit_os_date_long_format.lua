-- expect: memory
-- limits: timeout=2000 maxmem=0 instructions=0
-- atmax: memory
-- why: os.date formats a long format in C, each %c adding a date (an 8 MB format would make some 100 MB); the sandbox formats long formats in pieces and refuses a result past 8 MiB
function main()
  return #os.date(('%c'):rep(1000000), 0)
end
