-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: the prelude replaces os with a table of time, clock, date and difftime only
-- message: field 'execute'
function main()
  return os.execute('touch /tmp/sl-pwned')
end
