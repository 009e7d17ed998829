-- string.rep, sub, byte, char, len, upper, lower, reverse, and the
-- string metatable.

--- rep basic
return string.rep('ab', 3), string.rep('ab', 3, ','), string.rep('x', 0), string.rep('x', -1), string.rep('', 5)
--- rep sep only between
return string.rep('a', 1, 'SEP'), string.rep('a', 2, ''), ('z'):rep(4, '-')
--- rep number coercion
return string.rep(12, 2), string.rep('a', '3'), string.rep('a', 2.0)
--- rep bad count
local _ = string.rep('a', 1.5)
--- rep bad count string
local _ = string.rep('a', 'x')
--- rep missing
local _ = string.rep()
--- rep table
local _ = string.rep({}, 2)
--- rep 300000
local s = string.rep('a', 300000) return #s, s:sub(-3)
--- rep large with sep
local s = string.rep('abc', 100000, '--') return #s
--- sub
local s = 'hello world'
return s:sub(1, 5), s:sub(-5), s:sub(-100, 2), s:sub(3, 2), s:sub(0), s:sub(7, 100), s:sub(2), s:sub(-3, -2)
--- sub extremes
local s = 'abc'
return s:sub(math.mininteger, math.maxinteger), s:sub(math.maxinteger), s:sub(4), s:sub(3, 3)
--- sub float index
return ('abc'):sub(2.0, 3.0)
--- sub bad index
local _ = ('abc'):sub(1.5)
--- byte
local s = 'ABC\0\255'
return s:byte(), s:byte(2), s:byte(-1), s:byte(1, -1)
--- byte empty ranges
return ('abc'):byte(10), ('abc'):byte(3, 2), ('abc'):byte(0)
--- byte bad
local _ = ('abc'):byte('x')
--- char
return string.char(72, 105), string.char(), string.char(0, 255)
--- char out of range
local _ = string.char(256)
--- char negative
local _ = string.char(-1)
--- char not number
local _ = string.char('a')
--- len
return string.len(''), string.len('abc\0def'), #'xyz', string.len(123)
--- len bad
local _ = string.len()
--- upper lower
return string.upper('abc XYZ 123 \233'), string.lower('ABC xyz \201'), ('MiXeD'):lower()
--- reverse
return string.reverse('abc'), string.reverse(''), ('a\0b'):reverse()
--- upper long
local s = string.rep('ab', 200000):upper() return #s, s:sub(1, 4)
--- reverse long
local s = (string.rep('a', 300000) .. 'b'):reverse() return #s, s:sub(1, 2)
--- lower long
return #string.rep('AB', 300000):lower()
--- string metatable index
local s = 'abc' return s:len(), s:upper(), ('%d'):format(5)
--- string metatable protected
return getmetatable('')
--- string arithmetic coercion
return '10' + 5, '3' * '4', '2' ^ 2, 10 .. 20, '0x10' + 0, ' 5 ' + 1
--- string arithmetic bad
local _ = 'abc' + 1
--- string comparison
return 'a' < 'b', 'a\0b' < 'a\0c', 'Z' < 'a', '' < 'a', 'abc' == 'abc'
--- tostring numbers
return tostring(1e15), tostring(1e16), tostring(-0.0), tostring(1/0), tostring(2^63), tostring(math.mininteger), tostring(3.0)
--- tonumber
return tonumber('0x1p4'), tonumber('  10  '), tonumber('10', 2), tonumber('ff', 16), tonumber('zz', 36), tonumber('8', 8), tonumber(''), tonumber('1e'), tonumber('0x'), tonumber('1 2')
--- tonumber bad base
local _ = tonumber('10', 99)
--- string concat number
return 1 .. '', 1.5 .. '', -0.0 .. '', 2^53 .. ''
--- string index method missing
local _ = ('x'):nosuch()
--- rep result too long for lua
return pcall(string.rep, 'x', math.maxinteger)
