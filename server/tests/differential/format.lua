-- string.format.

--- format integers
return string.format('%d %5d %-5d| %05d %+d %x %X %o %i', 42, 42, 42, 42, 42, 255, 255, 8, 7)
--- format floats
return string.format('%f %.2f %10.3f %e %g %g %g', 3.14159, 3.14159, 3.14159, 12345.678, 0.0001, 1e20, 100)
--- format hex float
return string.format('%a', 1.0), string.format('%A', 0.5)
--- format strings
return string.format('%s %10s %-10s| %.2s', 'a', 'b', 'c', 'xyz')
--- format percent
return string.format('100%%')
--- format q
return string.format('%q', 'a\nb"c\\\0d\r\127')
--- format q numbers
return string.format('%q', 1), string.format('%q', 1.5), string.format('%q', math.mininteger), string.format('%q', 1/0), string.format('%q', -1/0), string.format('%q', 2^63)
--- format q nan
return string.format('%q', 0/0)
--- format q other
return string.format('%q', true), string.format('%q', nil)
--- format q table
local _ = string.format('%q', {})
--- format q modifier
local _ = string.format('%10q', 'x')
--- format c
return string.format('%c%c%c', 76, 117, 97)
--- format s with tostring
return string.format('%s %s %s', nil, true, 12.0)
--- format s metamethod
return string.format('%s', setmetatable({}, {__tostring = function() return 'OBJ' end}))
--- format s with embedded zero
local _ = string.format('%s', 'a\0b'), string.format('%.1s', 'a\0b')
--- format d float integral
return string.format('%d', 3.0)
--- format d float not integral
local _ = string.format('%d', 3.5)
--- format d string
return string.format('%d', '10')
--- format d bad
local _ = string.format('%d', 'x')
--- format missing arg
local _ = string.format('%d %d', 1)
--- format invalid conversion
local _ = string.format('%y', 1)
--- format invalid long spec
local _ = string.format('%123d', 1)
--- format too long precision
local _ = string.format('%.123f', 1)
--- format flags
return string.format('%#x %#o % d %-+5d|', 255, 8, 5, 3)
--- format invalid flag combination
local _ = string.format('%#d', 1)
--- format i with precision
return string.format('%.3d', 5), string.format('%5.1s|', 'abc')
--- format x negative
return string.format('%x', -1)
--- format huge float
return string.format('%.3f', 1e300):sub(1, 20), #string.format('%.99f', 1e308)
--- format g precision
return string.format('%.3g %.10g %g', 2/3, 2/3, 2^63)
--- format nan inf
return string.format('%f %f', 1/0, -1/0), string.format('%.1f', 0/0):gsub('-', '')
--- format no args
return string.format('plain'), string.format('')
--- format bad format type
local _ = string.format({})
--- format number as format
return string.format(12)
--- format long result
return #string.format('%s%s', string.rep('a', 300000), string.rep('b', 300000))
--- format many
return string.format(string.rep('%d', 50), table.unpack((function() local t = {} for i = 1, 50 do t[i] = i end return t end)()))
--- tostring vs format
return tostring(0.1), string.format('%.14g', 0.1), 0.1 + 0.2, 100 // 1.0, 1e100
