-- expect: runtime
-- limits: timeout=1000 maxmem=8192 instructions=0
-- why: an error object that is not a string is reported by its type, never converted by running user code
-- message: error object is a table value
function main()
  error({code = 1, secret = 'x'})
end
