-- The utf8 library.

--- char
return utf8.char(72, 228, 8364, 128512), utf8.char(), utf8.char(0x7FFFFFFF)
--- char out of range
local _ = utf8.char(0x80000000)
--- char negative
local _ = utf8.char(-1)
--- char bad
local _ = utf8.char('x')
--- charpattern
return utf8.charpattern
--- len
return utf8.len('häll€'), utf8.len(''), utf8.len('abc', 2), utf8.len('abc', 4), utf8.len('abc', -1), utf8.len('häll€', 1, -1)
--- len invalid
return utf8.len('a\255b'), utf8.len('\xC0\x80'), utf8.len('\xED\xA0\x80'), utf8.len('\xF4\x90\x80\x80')
--- len lax
return utf8.len('\xED\xA0\x80', 1, -1, true), utf8.len('\xF4\x90\x80\x80', 1, -1, true)
--- len out of bounds
local _ = utf8.len('abc', 5)
--- len out of bounds end
local _ = utf8.len('abc', 1, 4)
--- len long
return utf8.len(string.rep('€', 100000)), utf8.len(string.rep('a', 300000) .. '\255')
--- codepoint
return utf8.codepoint('häl', 1, -1)
--- codepoint default
return utf8.codepoint('€uro')
--- codepoint invalid
local _ = utf8.codepoint('\255')
--- codepoint out of bounds
local _ = utf8.codepoint('abc', 4)
--- codepoint empty range
return utf8.codepoint('abc', 3, 2)
--- codepoint middle of char
local _ = utf8.codepoint('€', 2)
--- codepoint lax
return utf8.codepoint('\xED\xA0\x80', 1, 1, true)
--- codepoint surrogate strict
local _ = utf8.codepoint('\xED\xA0\x80')
--- offset
local s = 'häll€!'
return utf8.offset(s, 1), utf8.offset(s, 2), utf8.offset(s, 3), utf8.offset(s, -1), utf8.offset(s, -2), utf8.offset(s, 0, 3), utf8.offset(s, 7), utf8.offset(s, 8)
--- offset continuation error
local _ = utf8.offset('€', 1, 2)
--- offset out of bounds
local _ = utf8.offset('abc', 1, 5)
--- offset zero
return utf8.offset('abc', 0), utf8.offset('abc', 0, 4)
--- codes
local t = {} for p, c in utf8.codes('aé€') do t[#t + 1] = p .. ':' .. c end return table.concat(t, ' ')
--- codes invalid
local t = {} for p, c in utf8.codes('a\255b') do t[#t + 1] = c end return table.concat(t, ',')
--- codes lax
local t = {} for p, c in utf8.codes('\xED\xA0\x80', true) do t[#t + 1] = c end return table.concat(t, ',')
--- codes continuation start
for p, c in utf8.codes('\x80') do end
--- escape in literal
return '\u{48}\u{E4}\u{20AC}', #'\u{7FFFFFFF}'
--- char long
return #utf8.char(table.unpack((function() local t = {} for i = 1, 5000 do t[i] = 0x20AC end return t end)()))
--- utf8 with pattern
local n = 0 for c in ('häll€'):gmatch(utf8.charpattern) do n = n + 1 end return n
