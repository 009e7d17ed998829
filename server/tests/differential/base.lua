-- tostring and ipairs, which run __tostring and __index where the hook can
-- pause them (baselib.rs), with Lua's results and errors.

--- tostring plain values
return tostring(nil), tostring(true), tostring(12), tostring(1.5), tostring('s'), tostring(-0.0), tostring(1e100)
--- tostring no value
return tostring()
--- tostring with __tostring
return tostring(setmetatable({}, {__tostring = function() return 'obj' end}))
--- tostring with __tostring returning a number
return tostring(setmetatable({}, {__tostring = function() return 42 end})), math.type(tostring(setmetatable({}, {__tostring = function() return 4.5 end})))
--- tostring with __tostring returning a table
return tostring(setmetatable({}, {__tostring = function() return {} end}))
--- tostring with __tostring returning nothing
return tostring(setmetatable({}, {__tostring = function() end}))
--- tostring with __tostring raising
return tostring(setmetatable({}, {__tostring = function() error('boom') end}))
--- tostring with __tostring not a function
return tostring(setmetatable({}, {__tostring = 'x'}))
--- tostring with __name
return (tostring(setmetatable({}, {__name = 'My.Type'})):gsub('0x%x+', 'ADDR'))
--- tostring with __metatable hiding __tostring
return tostring(setmetatable({}, {__metatable = false, __tostring = function() return 'hidden' end}))
--- tostring with a long __tostring
local o = setmetatable({}, {__tostring = function() local n = 0 for i = 1, 3000000 do n = n + i end return 'sum ' .. n end})
return tostring(o), string.format('[%s]', o), string.format('%10s|', setmetatable({}, {__tostring = function() return 'ab' end}))
--- tostring in pcall
return pcall(tostring, setmetatable({}, {__tostring = function() return 'in pcall' end}))
--- tostring inside a coroutine yielding from __tostring
local o = setmetatable({}, {__tostring = function() coroutine.yield('y') return 'after' end})
local co = coroutine.wrap(function() return tostring(o) end)
return co(), co()
--- ipairs plain
local t, out = {10, 20, nil, 40}, {} for i, v in ipairs(t) do out[#out + 1] = i .. '=' .. v end return table.concat(out, ' ')
--- ipairs no value
for _ in ipairs() do end
--- ipairs nil
for _ in ipairs(nil) do end
--- ipairs number
for _ in ipairs(5) do end
--- ipairs string
local n = 0 for _ in ipairs('abc') do n = n + 1 end return n
--- ipairs with __index function
local t = setmetatable({}, {__index = function(_, i) if i <= 5 then return i * i end end})
local out = {} for i, v in ipairs(t) do out[#out + 1] = v end return table.concat(out, ',')
--- ipairs with __index table chain
local base = {1, 2, 3}
local mid = setmetatable({}, {__index = base})
local t = setmetatable({[1] = 'own'}, {__index = mid})
local out = {} for i, v in ipairs(t) do out[#out + 1] = v end return table.concat(out, ',')
--- ipairs with a raising __index
local t = setmetatable({1}, {__index = function(_, i) error('no ' .. i) end})
for _ in ipairs(t) do end
--- ipairs iterator called directly
local f, t, i = ipairs({'a', 'b'}) return f(t, i), f(t, 1), f(t, 2), select('#', f(t, 2))
--- ipairs iterator bad index
local f, t = ipairs({}) return f(t, 'x')
--- ipairs with a yielding __index in a coroutine
local t = setmetatable({}, {__index = function(_, i) if i <= 3 then coroutine.yield(i) return i end end})
local co = coroutine.wrap(function() local n = 0 for _, v in ipairs(t) do n = n + v end return 'sum', n end)
return co(), co(), co(), co()
--- ipairs with a long __index
local t = setmetatable({}, {__index = function(_, i) if i <= 3 then local n = 0 for k = 1, 1000000 do n = n + k end return n end end})
local s = 0 for _, v in ipairs(t) do s = s + v end return s
