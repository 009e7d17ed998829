-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: io is not loaded in the sandbox (allow-list in env.rs), so indexing it fails
-- message: global 'io'
function main()
  return io.open('/etc/passwd'):read('a')
end
