-- string.find, match, gmatch and gsub.

--- issue find anchored a* long
return string.find(string.rep('a', 300000), '^a*.?b$')
--- find anchored long match
return string.find(string.rep('a', 300000) .. 'b', '^a*.?b$')
--- match long greedy
local s = string.rep('ab', 150000) return #string.match(s, '^(.*)b$')
--- gsub long
local r, n = string.gsub(string.rep('abc', 50000), 'b', 'XY') return #r, n
--- gmatch long count
local n = 0 for w in string.gmatch(string.rep('word ', 60000), '%a+') do n = n + 1 end return n
--- find lazy long
return string.find(string.rep('x', 200000) .. 'end', '.-end')
--- find plain
return string.find('a.b.c', '.', 1, true), string.find('a.b.c', '.b', 1, true), string.find('abc', '', 10, true), string.find('abc', '', 4, true)
--- find init
return string.find('abcabc', 'b', 3), string.find('abcabc', 'b', -2), string.find('abcabc', 'b', -100), string.find('abc', 'c', 10)
--- find empty
return string.find('', ''), string.find('abc', ''), string.find('', 'a'), string.find('abc', '', 4), string.find('abc', '', 5)
--- find captures
return string.find('hello world', '(o)(r)'), string.find('key=val', '(%w+)=(%w+)')
--- find position captures
return string.find('hello', '()ll()'), string.match('hello', '()ll()')
--- match anchors
return string.match('hello', '^h'), string.match('hello', '^e'), string.match('hello', 'o$'), string.match('hello', 'l$'), string.match('a$b', 'a$b')
--- match caret not anchor inside
return string.match('a^b', 'a^b'), string.match('^a', '^^a')
--- match classes
local s = 'Ab1 _\t.%'
return s:match('%a+'), s:match('%d'), s:match('%s'), s:match('%p+'), s:match('%w+'), s:match('%u'), s:match('%l'), s:match('%c'), s:match('%x+')
--- match negated classes
return ('abc123'):match('%D+'), ('abc123'):match('%A+'), ('  x'):match('%S'), ('ab'):match('%W')
--- match sets
return ('hello123'):match('[a-f]+'), ('xyz'):match('[^x]+'), ('a]b'):match('[]]'), ('a-b'):match('[a%-]+'), ('^x'):match('[%^x]+'), ('5'):match('[%d]')
--- match set ranges edge
return ('-'):match('[a-]'), ('b'):match('[a-]'), (']'):match('[^]]'), ('x'):match('[^]]')
--- match quantifiers
return ('aaa'):match('a-'), ('aaa'):match('a-$'), ('aaab'):match('a*'), ('b'):match('a+'), ('ab'):match('a?b'), ('b'):match('a?b')
--- match nested captures
return string.match('2024-01-15', '((%d+)-(%d+))-(%d+)')
--- match back reference
return string.match('say "hi" now', '(["\'])(.-)%1'), string.match('abab', '(ab)%1'), string.match('abc', '(a)%1')
--- match balance
return string.match('f(a(b)c) d', '%b()'), string.match('[[x]]', '%b[]'), string.match('(((', '%b()'), string.match('if x then y end', '%bie')
--- match frontier
return string.gsub('THE (quick) fox', '%f[%a]%a+', 'W'), string.find('hello', '%f[%l]'), string.match('aXb', '%f[%u].')
--- frontier at end
return string.find('abc', '%f[%z]'), string.find('abc', '%f[%Z]'), string.gsub('a b', '%f[%w]', '|')
--- match init
return string.match('hello', 'l+', 4), string.match('hello', '.', -1), string.match('hello', 'h', 2)
--- match no capture returns whole
return string.match('abc', 'b'), string.match('abc', '()b')
--- match dot newline
return string.match('a\nb', 'a.b'), string.match('a\0b', 'a%zb'), string.match('a\0b', 'a.b')
--- gmatch words
local t = {} for w in string.gmatch('one two  three', '%a+') do t[#t + 1] = w end return table.concat(t, ',')
--- gmatch pairs
local t = {} for k, v in string.gmatch('a=1, b=2, c=3', '(%w+)=(%w+)') do t[#t + 1] = k .. v end return table.concat(t, ';')
--- gmatch empty matches
local t = {} for w in string.gmatch('abc', 'x*') do t[#t + 1] = '[' .. w .. ']' end return table.concat(t)
--- gmatch position captures
local t = {} for p in string.gmatch('abc', '()') do t[#t + 1] = p end return table.concat(t, ',')
--- gmatch anchor
local t = {} for w in string.gmatch('aaa', '^a') do t[#t + 1] = w end return #t
--- gmatch init
local t = {} for w in string.gmatch('hello world', '%a+', 3) do t[#t + 1] = w end return table.concat(t, ',')
--- gmatch init negative
local t = {} for w in string.gmatch('hello world', '%a+', -3) do t[#t + 1] = w end return table.concat(t, ',')
--- gsub string repl
return string.gsub('hello world', 'o', '0'), string.gsub('hello', '', '-'), string.gsub('abc', '%w', '%0%0')
--- gsub captures repl
return string.gsub('hello world', '(%w+) (%w+)', '%2 %1'), string.gsub('abc', '(b)', '[%1]'), string.gsub('x', 'x', '%%')
--- gsub max n
return string.gsub('aaaa', 'a', 'b', 2), string.gsub('aaaa', 'a', 'b', 0), string.gsub('aaaa', 'a', 'b', -1), string.gsub('aaaa', 'a', 'b', 2.0)
--- gsub bad n
local _ = string.gsub('aaaa', 'a', 'b', 1.5)
--- gsub table repl
return string.gsub('$name is $age', '%$(%w+)', {name = 'Bob', age = 42})
--- gsub table repl false keeps
return string.gsub('a b c', '%w', {a = 'A', b = false})
--- gsub function repl
return string.gsub('1 2 3', '%d', function(d) return d * 2 end)
--- gsub function nil keeps
return string.gsub('abc', '%w', function(c) if c == 'b' then return 'B' end end)
--- gsub function position capture
return string.gsub('abc', '()b', function(p) return p end)
--- gsub function bad value
local _ = string.gsub('abc', 'b', function() return {} end)
--- gsub table bad value
local _ = string.gsub('abc', 'b', {b = true})
--- gsub anchored
return string.gsub('aaa', '^a', 'b'), string.gsub('hello', '^', '>'), string.gsub('hello', '$', '<')
--- gsub empty pattern positions
return string.gsub('abc', 'x*', '-')
--- gsub invalid percent in repl
local _ = string.gsub('abc', 'b', '%2')
--- gsub invalid percent letter
local _ = string.gsub('abc', 'b', '%x')
--- gsub repl percent zero
return string.gsub('abc', '(b)', '<%0>')
--- gsub bad repl type
local _ = string.gsub('abc', 'b', true)
--- gsub number repl
return string.gsub('abc', 'b', 5), string.gsub('abc', 'b', 1.5)
--- gsub number subject
return string.gsub(12321, 2, 'x')
--- error malformed ends with percent
local _ = string.find('abc', '%')
--- error missing bracket
local _ = string.find('abc', '[a')
--- error missing bracket with escape
local _ = string.match('abc', '[%')
--- error unfinished capture
local _ = string.find('abc', '(a')
--- error unfinished capture match
local _ = string.match('abc', '(a')
--- error invalid pattern capture
return string.find('abc', 'a)')
--- error invalid capture index
local _ = string.find('abc', '(a)%2')
--- error capture index zero
local _ = string.find('abc', '%0')
--- error frontier no bracket
local _ = string.find('abc', '%fa')
--- error balance args
local _ = string.find('abc', '%b')
--- error balance one arg
local _ = string.find('abc', '%ba')
--- error too many captures
local _ = string.find('a', string.rep('()', 33))
--- thirty two captures ok
return select('#', string.find('a', string.rep('()', 32)))
--- error pattern too complex
local _ = string.find(string.rep('a', 300), string.rep('(', 200) .. 'a' .. string.rep(')', 200))
--- malformed not reached
return string.find('abc', 'x[')
--- error gmatch malformed
for w in string.gmatch('abc', '[') do end
--- error gsub malformed
return string.gsub('abc', '(', 'x')
--- find bad args
local _ = string.find()
--- find bad pattern type
local _ = string.find('abc', {})
--- match bad init
local _ = string.match('abc', 'a', 'x')
--- gmatch bad
local _ = string.gmatch(nil, 'a')
--- find number subject
return string.find(12345, 34), string.match(3.5, '%d')
--- find special chars plain detection
return string.find('a+b', '+', 1, true), string.find('a+b', 'a+b'), string.find('a.b', 'a.b')
--- match long subject middle
local s = string.rep('x', 100000) .. 'needle' .. string.rep('y', 100000)
return s:find('needle'), s:find('ne+dle'), s:match('x(n%a+)y')
--- find long plain not found
return string.find(string.rep('a', 600000), 'b', 1, true), string.find(string.rep('a', 600000), 'ab')
--- find long plain found late
local s = string.rep('a', 600000) .. 'b' return string.find(s, 'ab', 1, true), string.find(s, 'ab', -5), string.find(s, 'a', 599999)
--- gsub long function repl
local r, n = string.gsub(string.rep('a', 50000), 'a', function(c) return 'b' end) return #r, n
--- case insensitive trick
return string.gsub('Hello', '%a', function(c) return '[' .. c:lower() .. c:upper() .. ']' end)
--- min expand then capture
return string.match('<a><b>', '<(.-)>'), string.match('key = value # c', '^(%w+)%s*=%s*(.-)%s*#')
--- trim idiom
return string.match('  hi there  ', '^%s*(.-)%s*$')
--- split lines
local t = {} for l in ('a\nb\n\nc'):gmatch('([^\n]*)\n?') do t[#t + 1] = '<' .. l .. '>' end return table.concat(t)
--- tail call error position
return string.find('abc', '%')
--- gsub without substitution returns the subject
local s = string.rep('a', 100)
local r1 = string.gsub(s, 'b', 'c')
local r2 = string.gsub(s, '.', {x = 'y'})
local r3 = string.gsub(s, '.', function() end)
return string.format('%p', s) == string.format('%p', r1), string.format('%p', s) == string.format('%p', r2), r3 == s
