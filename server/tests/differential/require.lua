-- require of the built-in libraries returns the library itself.

--- require utf8
return require('utf8') == utf8
--- require string
return require('string') == string, require('string').format('%d', 3)
--- require table
return require('table') == table
--- require math
return require('math') == math
--- require coroutine
return require('coroutine') == coroutine
--- require os
return require('os') == os
--- require string method shared
local s = require('string') return ('x'):rep(2) == s.rep('x', 2)
--- require twice same
return require('utf8') == require('utf8')
--- require bad arg
local _ = require({})
--- require nil
local _ = require(nil)
--- require no arg
local _ = require()
