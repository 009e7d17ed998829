-- expect: ok
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: os.date checks its conversion specifiers and the time range before calling strftime, so bad formats and absurd times are ordinary errors
-- result: [false,false,false,false,false,true,true]
function main()
  return {
    (pcall(os.date, '%Ez')),
    (pcall(os.date, '%')),
    (pcall(os.date, '%Q')),
    (pcall(os.date, '%Y', 1 << 62)),
    (pcall(os.time, {year = 1 << 40, month = 1, day = 1})),
    (pcall(os.date, string.rep('%c', 1000))),
    (pcall(os.date, '!*t', 0)),
  }
end
