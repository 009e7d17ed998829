-- string.pack, string.unpack and string.packsize.

--- pack integers
return string.pack('i4', 100), string.pack('>i4', 100), string.pack('<i2', -2), string.pack('b', -1), string.pack('B', 255)
--- pack unpack roundtrip
local s = string.pack('i1i2i4i8', 1, 2, 3, 4) return #s, string.unpack('i1i2i4i8', s)
--- pack overflow
local _ = string.pack('i1', 200)
--- pack unsigned overflow
local _ = string.pack('B', 256)
--- pack unsigned negative
local _ = string.pack('I1', -1)
--- pack sizes
return string.packsize('i4'), string.packsize('i8'), string.packsize('d'), string.packsize('f'), string.packsize('n'), string.packsize('j'), string.packsize('T'), string.packsize('!8i1i8')
--- packsize variable
local _ = string.packsize('s')
--- packsize z
local _ = string.packsize('z')
--- pack strings
return string.pack('z', 'hi'), string.pack('s1', 'abc'), string.pack('s', 'x'), string.pack('c5', 'ab')
--- pack c too long
local _ = string.pack('c2', 'abc')
--- pack z with zero
local _ = string.pack('z', 'a\0b')
--- pack s1 too long
local _ = string.pack('s1', string.rep('x', 256))
--- unpack strings
return string.unpack('z', 'hi\0rest'), string.unpack('s1', '\3abcd'), string.unpack('c2', 'abcd')
--- unpack z unfinished
local _ = string.unpack('z', 'abc')
--- unpack too short
local _ = string.unpack('i4', 'ab')
--- unpack position
return string.unpack('B', 'abc', 2), string.unpack('B', 'abc', -1)
--- unpack position out of range
local _ = string.unpack('B', 'abc', 5)
--- unpack empty at end
return string.unpack('', 'abc', 4)
--- pack floats
local s = string.pack('d', 1.5) return #s, string.unpack('d', s), string.unpack('f', string.pack('f', 0.25))
--- pack float from int
return string.unpack('d', string.pack('d', 3))
--- pack int from float
return string.unpack('i4', string.pack('i4', 3.0))
--- pack int from bad float
local _ = string.pack('i4', 3.5)
--- pack alignment
return string.pack('!4 i1 i4', 1, 2), string.packsize('!4 i1 i4'), string.packsize('!i1 i8')
--- pack Xop
return string.pack('i1 Xi4 i4', 1, 2), string.packsize('i1Xi4')
--- pack X invalid
local _ = string.pack('X', 1)
--- pack invalid option
local _ = string.pack('y', 1)
--- pack size out of limits
local _ = string.pack('i17', 1)
--- pack size zero
local _ = string.pack('i0', 1)
--- pack endianness
return string.pack('<i3', 0x010203), string.pack('>i3', 0x010203), string.pack('=I2', 1)
--- pack padding and space
return string.pack('b x b', 1, 2), string.pack(' ')
--- pack missing argument
local _ = string.pack('i4')
--- pack bad argument type
local _ = string.pack('i4', 'x')
--- pack string number
return string.pack('i4', '7'), string.pack('z', 5)
--- unpack big ints
return string.unpack('i16', string.pack('i16', -3)), string.unpack('I9', string.rep('\255', 8) .. '\0')
--- unpack int does not fit
local _ = string.unpack('i9', string.rep('\0', 8) .. '\1')
--- pack j roundtrip
return string.unpack('j', string.pack('j', math.mininteger)), string.unpack('J', string.pack('J', -1))
--- packsize too large
local _ = string.packsize('c' .. math.maxinteger)
--- packsize sum too large
local _ = string.packsize(string.rep('c1000000000', 10))
--- pack bad format type
local _ = string.pack({})
--- pack many
local fmt = string.rep('i1', 100) local t = {} for i = 1, 100 do t[i] = i end
local s = string.pack(fmt, table.unpack(t)) local r = table.pack(string.unpack(fmt, s)) return #s, r.n, r[100], r[101]
--- pack long format
local fmt = string.rep('B', 5000) local s = string.pack(fmt, table.unpack((function() local t = {} for i = 1, 5000 do t[i] = i % 256 end return t end)()))
return #s, string.packsize(fmt), select('#', string.unpack(fmt, s))
--- unpack long format sum
local fmt = string.rep('x', 5000) .. 'B' return string.unpack(fmt, string.rep('\1', 5001)), string.packsize(fmt)
