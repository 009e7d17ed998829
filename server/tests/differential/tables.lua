-- table.insert, remove, concat, sort, move, unpack, pack, and their
-- metamethod cases.

--- issue insert too many args
table.insert({}, 2, 3, 4)
--- insert too few args
table.insert({})
--- insert append
local t = {1, 2} table.insert(t, 3) return table.concat(t, ','), #t
--- insert at
local t = {1, 2, 3} table.insert(t, 1, 0) table.insert(t, 3, 'x') table.insert(t, #t + 1, 'e') return table.concat(t, ',')
--- insert out of bounds
local t = {1, 2} table.insert(t, 4, 'x')
--- insert position zero
table.insert({1}, 0, 'x')
--- insert bad position
table.insert({1}, 'a', 'x')
--- insert float position
local t = {1, 2} table.insert(t, 2.0, 'x') return table.concat(t, ',')
--- insert float position bad
table.insert({1}, 1.5, 'x')
--- insert not table
table.insert(nil, 1)
--- insert nil value
local t = {1, 2} table.insert(t, 1, nil) return #t, t[1], t[2], t[3]
--- insert long shift
local t = {} for i = 1, 10000 do t[i] = i end table.insert(t, 1, 0) return #t, t[1], t[2], t[10001]
--- remove last
local t = {1, 2, 3} return table.remove(t), #t
--- remove first
local t = {1, 2, 3} return table.remove(t, 1), table.concat(t, ',')
--- remove empty
local t = {} return table.remove(t), table.remove(t, 0), table.remove(t, 1), #t
--- remove out of bounds
table.remove({1, 2}, 5)
--- remove size plus one
local t = {1, 2} return table.remove(t, 3), #t
--- remove zero from nonempty
table.remove({1}, 0)
--- remove long shift
local t = {} for i = 1, 10000 do t[i] = i end return table.remove(t, 1), #t, t[1], t[9999]
--- concat
return table.concat({1, 2, 3}), table.concat({1, 2, 3}, ', '), table.concat({}, 'x'), table.concat({'a', 'b', 'c'}, '-', 2, 3), table.concat({'a'}, '-', 3, 2)
--- concat numbers
return table.concat({1, 2.5, -0.0, 2^63}, ' ')
--- concat invalid value
local _ = table.concat({1, {}, 3})
--- concat invalid value at
local _ = table.concat({1, 2, nil, 4}, ',', 1, 4)
--- concat bad sep
local _ = table.concat({1}, {})
--- concat long
local t = {} for i = 1, 10000 do t[i] = i % 10 end local s = table.concat(t, ',') return #s, s:sub(1, 10)
--- concat metamethod index
local t = setmetatable({}, {__index = function(_, k) return 'v' .. k end, __len = function() return 3 end})
return table.concat(t, ',')
--- sort numbers
local t = {5, 2, 8, 1, 9, 3} table.sort(t) return table.concat(t, ',')
--- sort strings
local t = {'pear', 'apple', 'fig', 'Banana'} table.sort(t) return table.concat(t, ',')
--- sort comparator
local t = {5, 2, 8, 1} table.sort(t, function(a, b) return a > b end) return table.concat(t, ',')
--- sort mixed error
local t = {1, 'a', 2} table.sort(t)
--- sort invalid order function
local t = {} for i = 1, 100 do t[i] = i % 7 end
local ok, e = pcall(table.sort, t, function(a, b) return true end) return ok, e
--- sort bad comparator type
table.sort({3, 2, 1}, 5)
--- sort long
local t = {} for i = 1, 20000 do t[i] = (i * 7919) % 20011 end table.sort(t)
local okk = true for i = 2, #t do if t[i - 1] > t[i] then okk = false end end return okk, t[1], t[20000]
--- sort long comparator
local t = {} for i = 1, 5000 do t[i] = (i * 31) % 5003 end table.sort(t, function(a, b) return a > b end) return t[1], t[5000]
--- sort with nan
local t = {3, 1, 2} table.sort(t, function(a, b) return a < b end) return table.concat(t)
--- sort metamethod lt
local mt = {__lt = function(a, b) return a.v < b.v end}
local t = {} for i, v in ipairs({4, 1, 3, 2}) do t[i] = setmetatable({v = v}, mt) end table.sort(t)
return t[1].v, t[2].v, t[3].v, t[4].v
--- sort array too big
local t = setmetatable({}, {__len = function() return math.maxinteger end}) table.sort(t)
--- move basic
local t = table.move({1, 2, 3}, 1, 3, 2) return table.concat(t, ',')
--- move to other
local a, b = {1, 2, 3}, {'x', 'y', 'z', 'w'} local r = table.move(a, 1, 2, 3, b) return r == b, table.concat(b, ',')
--- move overlap backward
local t = table.move({1, 2, 3, 4, 5}, 2, 5, 1) return table.concat(t, ',')
--- move empty range
local t = table.move({1, 2}, 3, 1, 1) return table.concat(t, ',')
--- move too many
table.move({}, 1, math.maxinteger, 2)
--- move wrap around
table.move({}, -1, math.maxinteger, 2)
--- move dest wrap
table.move({1}, 1, 2, math.maxinteger)
--- move metamethods
local log = {}
local src = setmetatable({}, {__index = function(_, k) log[#log + 1] = 'r' .. k return k * 10 end})
local dst = setmetatable({}, {__newindex = function(t, k, v) log[#log + 1] = 'w' .. k rawset(t, k, v) end})
table.move(src, 1, 3, 1, dst) return table.concat(log, ','), dst[1], dst[3]
--- move not table
table.move(1, 1, 1, 1)
--- unpack
return table.unpack({1, 2, 3}), table.unpack({1, 2, 3}, 2), table.unpack({1, 2, 3}, 2, 3), table.unpack({}, 1, 0)
--- unpack nils
return table.unpack({1, nil, 3}, 1, 4)
--- unpack too many
local _ = table.unpack({}, 1, 1e7)
--- unpack the most values
return select('#', table.unpack({}, 1, 65536))
--- unpack past the most values
return select('#', table.unpack({}, 1, 65537))
--- byte past the most values
return select('#', ('a'):rep(65537):byte(1, -1))
--- unpack huge range
local _ = table.unpack({}, math.mininteger, math.maxinteger)
--- unpack metamethod
local t = setmetatable({}, {__index = function(_, k) return k * 2 end})
return table.unpack(t, 1, 3)
--- unpack len metamethod
local t = setmetatable({}, {__len = function() return 2 end, __index = function(_, k) return k end})
return table.unpack(t)
--- pack
local t = table.pack(1, nil, 3) return t.n, t[1], t[2], t[3], table.pack().n
--- insert len metamethod
local t = setmetatable({}, {__len = function() return 5 end}) table.insert(t, 'x') return rawget(t, 6)
--- insert newindex metamethod
local log = {}
local t = setmetatable({1, 2}, {__newindex = function(t, k, v) log[#log + 1] = k rawset(t, k, v) end})
table.insert(t, 1, 0) return table.concat(log, ','), table.concat(t, ',')
--- remove len metamethod
local t = setmetatable({10, 20, 30}, {__len = function() return 2 end}) return table.remove(t), rawget(t, 3)
--- len metamethod bad
table.insert(setmetatable({}, {__len = function() return 'x' end}), 1)
--- len metamethod float
local t = setmetatable({}, {__len = function() return 2.0 end}) table.insert(t, 'a') return rawget(t, 3)
--- ipairs stops at nil
local n = 0 for i, v in ipairs({1, 2, nil, 4}) do n = n + 1 end return n
--- ipairs metamethod
local t = setmetatable({}, {__index = function(_, k) if k <= 3 then return k end end})
local s = 0 for i, v in ipairs(t) do s = s + v end return s
--- next order array
local t = {10, 20, 30} local r = {} for k, v in pairs(t) do r[#r + 1] = k .. '=' .. v end return table.concat(r, ' ')
--- select
return select('#'), select('#', nil, nil), select(2, 'a', 'b', 'c'), select(-1, 'a', 'b', 'c')
--- select bad
local _ = select(0, 'a')
--- select negative out of range
local _ = select(-5, 'a')
--- rawlen rawequal
return rawlen({1, 2}), rawlen('abc'), rawequal('a', 'a'), rawequal({}, {})
--- rawlen bad
local _ = rawlen(5)
--- tostring table with metamethod
return tostring(setmetatable({}, {__tostring = function() return 'T!' end})), tostring(setmetatable({}, {__name = 'My'})):match('^My: ') ~= nil
--- tostring bad metamethod
return tostring(setmetatable({}, {__tostring = function() return 1 end}))
--- setmetatable protected
local t = setmetatable({}, {__metatable = 'locked'}) return getmetatable(t), pcall(setmetatable, t, {})
--- setmetatable bad
local _ = setmetatable({}, 5)
--- error with table
local ok, e = pcall(error, {code = 1}) return ok, type(e), e.code
--- error level
local function f() error('boom', 2) end local ok, e = pcall(function() f() end) return e
--- error no position
return pcall(error, 'plain', 0)
--- error nil
return pcall(error)
--- xpcall handler
return xpcall(function() error('x', 0) end, function(m) return 'handled ' .. m end)
--- xpcall args
return xpcall(function(a, b) return a + b end, print, 2, 3)
--- pcall returns
return pcall(function(...) return select('#', ...), ... end, 1, nil)
--- assert
return pcall(assert, false), pcall(assert, nil, 'msg'), pcall(assert, 1, 2), select('#', assert(1, 2, 3))
--- assert no args
local _ = assert()
--- assert table message
local ok, e = pcall(assert, false, {1}) return ok, type(e)
--- integer division and modulo
return 7 // 2, -7 // 2, 7 % -3, -7 % 3, 7.5 // 2, 5 % math.huge, -5 % math.huge
--- integer division by zero
local _ = 1 // 0
--- modulo by zero
local _ = 1 % 0
--- float division by zero
return 1 / 0, -1 / 0, 0/0 ~= 0/0, 1 // 0.0
--- bitwise
return 1 << 63, 1 << 64, -1 >> 1, 3 & 5, 3 | 5, 3 ~ 5, ~0, 2.0 | 1
--- bitwise bad
local _ = 1.5 | 1
--- bitwise string
local _ = '3' | 0
--- math functions
return math.floor(3.7), math.ceil(3.2), math.floor(-0.5), math.max(1, 5, 3), math.min(2.5, 1), math.abs(math.mininteger), math.fmod(7, 3), math.fmod(-7, 3), math.tointeger(3.0), math.tointeger(3.5), math.ult(1, -1)
--- math fmod zero
local _ = math.fmod(1, 0)
--- math fmod float zero
return math.fmod(1, 0.0) ~= math.fmod(1, 0.0)
--- math max empty
local _ = math.max()
--- math type
return math.type(1), math.type(1.0), math.type('1'), math.huge, -math.huge, math.pi, math.maxinteger + 1 == math.mininteger
--- math sqrt exp log
return math.sqrt(16), math.exp(0), math.log(8, 2), math.log(100, 10), math.log(1), math.sin(0), math.cos(0)
--- integer float compare
return 1 == 1.0, math.maxinteger + 0.0 == math.maxinteger, 2^53 == 2^53 + 1, math.maxinteger < math.huge
--- string to number in for
local s = 0 for i = 1, 3 do s = s + i end return s
--- for loop float
local t = {} for i = 1, 2, 0.5 do t[#t + 1] = i end return table.concat(t, ',')
--- for loop zero step
for i = 1, 2, 0 do end
--- for loop bad
for i = 'a', 2 do end
--- goto and closures
local fs = {} for i = 1, 3 do fs[i] = function() return i end end return fs[1](), fs[3]()
--- integer overflow wrap
return math.maxinteger + 1, math.mininteger - 1, math.maxinteger * 2
--- string coercion in concat error
local _ = 'a' .. {}
--- compare error
local _ = {} < {}
--- compare mixed error
local _ = 1 < 'x'
--- call nil error
local t = {} t.x.y = 1
--- call nil global
undefined_function()
--- arithmetic on nil field
local t = {} return t.a + 1
--- length of nil
local x return #x
--- index number
local x = 5 return x.y
--- setmetatable no args
local _ = setmetatable()
--- setmetatable one arg
local _ = setmetatable({})
--- setmetatable nil mt
return getmetatable(setmetatable({}, nil))
--- setmetatable not table
local _ = setmetatable(5, {})
--- setmetatable protected error
setmetatable(setmetatable({}, {__metatable = 1}), {})
--- sort invalid order function long
local t = {} for i = 1, 5000 do t[i] = i % 13 end table.sort(t, function(a, b) return true end)
--- concat long invalid value
local t = {} for i = 1, 10000 do t[i] = 'x' end t[9000] = {} return table.concat(t)
--- insert long bad position
local t = {} for i = 1, 10000 do t[i] = i end table.insert(t, 10002, 'x')
--- unpack metamethod too many
local t = setmetatable({}, {__index = function() return 1 end}) return table.unpack(t, 1, 1e7)
--- issue insert too many args metatable
table.insert(setmetatable({}, {__index = function() end}), 2, 3, 4)
--- issue insert too many args long
local t = {} for i = 1, 5000 do t[i] = i end table.insert(t, 2, 3, 4)
--- insert bad position metatable
table.insert(setmetatable({1}, {__index = function() end}), 5, 'x')
--- remove bad position long
local t = {} for i = 1, 5000 do t[i] = i end table.remove(t, 5002)
--- move too many metatable
table.move(setmetatable({}, {__index = function() end}), 1, math.maxinteger, 2)
--- sort invalid order function small
for n = 4, 6 do local t = {} for i = 1, n do t[i] = i end local ok, e = pcall(table.sort, t, function(a, b) return true end) assert(not ok, n) end return 'all raised'
--- sort ties with comparator
local t = {} for i = 1, 60 do t[i] = {k = i % 5, id = i} end
table.sort(t, function(a, b) return a.k < b.k end)
local ids = {} for i = 1, #t do ids[i] = t[i].id end return table.concat(ids, ',')
--- sort comparator calls
local log = {} local t = {5, 3, 9, 1, 7, 2, 8}
table.sort(t, function(a, b) log[#log + 1] = a .. '<' .. b return a < b end)
return table.concat(t, ','), table.concat(log, ' ')
--- sort ties plain tables long
local t = {} for i = 1, 5000 do t[i] = {k = i % 7, id = i} end
table.sort(t, function(a, b) return a.k < b.k end)
local s = 0 for i = 1, #t do s = (s * 31 + t[i].id) % 1000000007 end return s
--- sort comparator error
table.sort({3, 1, 2}, function(a, b) error('cmp failed') end)
--- sort compare error no comparator
table.sort({3, {}, 2})
