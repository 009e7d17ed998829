//! The guarded library functions (`dispatch.rs`, `tablelib.rs`,
//! `strlib.rs`) give what Lua's own give, on inputs big enough to take
//! their Lua versions (strings of more than `PIECE` bytes, tables of more
//! than `C_LOOP_MAX` items, `__index` chains): each case runs in the
//! sandbox and in a plain Lua state (Lua's C functions), and the results
//! must be the same (long strings compared by length and a hash of every
//! byte).

use std::time::Duration;

use mlua::{Lua, Value};
use serde_json::json;

use super::*;

/// Lua that both sides run first: a fingerprint of a result, and inputs.
const SETUP: &str = r#"
local function fp(r)
  -- (Errors of the Lua versions carry no position: compare without.)
  if type(r) == 'string' and #r < 300 then return (r:gsub('^[^\n]-:%d+: ', '')) end
  if type(r) ~= 'string' then return r end
  local h, n, i = 0, #r, 1
  while i + 7 <= n do h = h * 31 + string.unpack('<i8', r, i); i = i + 8 end
  while i <= n do h = h * 31 + r:byte(i); i = i + 1 end
  return n .. ':' .. h
end
local bytes = {}
for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
local all = table.concat(bytes):rep(3000)
local u = ('aé€😀'):rep(70000)
local nums = {}
for i = 1, 300000 do nums[i] = i * 7 end
local t = {}
for i = 1, 10000 do t[i] = tostring(i) end
"#;

/// Each case is the body of a function whose result is compared.
const CASES: &[&str] = &[
    // string.rep
    "return string.rep('ab\\0c', 300000)",
    "return string.rep('xy', 300000, ',')",
    "return string.rep('', 20000000)",
    "return string.rep('a', 300000, '')",
    "return string.rep(12, 100000, 3.5)",
    "return string.rep('xyz', 0)",
    // upper, lower, reverse
    "return all:upper()",
    "return all:lower()",
    "return all:reverse()",
    // %q: a control character and a digit on either side of a piece's end
    "return string.format('%q', all)",
    "return string.format('%q', ('a'):rep(262143) .. '\\1' .. '2' .. ('b'):rep(300000))",
    "return string.format('%q', ('a'):rep(262144) .. '\\1' .. '2' .. ('b'):rep(300000))",
    "return string.format('%q', ('a'):rep(262142) .. '\\0' .. '\\0' .. '9' .. ('b'):rep(300000))",
    "return string.format('%q', ('\\0'):rep(600000))",
    // string.format: mixed items, __tostring, long formats, errors
    "return string.format('%s|%5.2f|%d|%q|%%|%-5s|%.3s|%x|%c|%10.4s|%i', all, 3.14159, 42, all, 'ab', u, 255, 65, 'abcdefg', -3)",
    "return string.format('[%s]', setmetatable({}, {__tostring = function() return ('z'):rep(400000) end}))",
    "return string.format(('%5d|'):rep(60000), table.unpack(nums, 1, 60000))",
    "return string.format('%s %s', all, nil)",
    "return select(2, pcall(function() return string.format(('%s'):rep(3) .. '%d', all, 'a', 'b', 'x') end))",
    "return select(2, pcall(function() return string.format('%s %5', all, 1) end))",
    "return select(2, pcall(function() return string.format('%s %d', all) end))",
    "return select(2, pcall(function() return string.format('%s %10q', all, 'x') end))",
    "return select(2, pcall(function() return string.format(('%s'):rep(300000)) end))",
    "return select(2, pcall(function() return string.format('%s %5s', all, 'a\\0b') end))",
    // string.pack with a long format
    "return string.pack(('i4'):rep(3000), table.unpack(nums, 1, 3000))",
    "return select(2, pcall(function() return string.pack(('i4'):rep(3000)) end))",
    // string.unpack and packsize with long formats, utf8.char of many
    "return select('#', string.unpack(('c0'):rep(60000), 'x'))",
    // string.byte, utf8.codepoint and table.unpack up to the most values
    // one call returns (decide.rs, VALUES_MAX), and C's own errors
    "local r = {all:byte(1, 65536)} return #r .. ':' .. r[1] .. ':' .. r[65536]",
    "local r = {all:byte(-65536, -1)} return #r .. ':' .. r[1] .. ':' .. r[65536]",
    "return select('#', all:byte(710000, 800000))",
    "return select('#', string.byte(123456789, 2, -2))",
    "return select(2, pcall(string.byte, all, 'x'))",
    "local r = {utf8.codepoint(u, 1, 65536)} return #r .. ':' .. r[#r]",
    "local r = {utf8.codepoint(u, -65530, -1)} return #r .. ':' .. r[1]",
    "return select(2, pcall(utf8.codepoint, u, 0, 10))",
    "return select(2, pcall(utf8.codepoint, u, 1, #u + 1))",
    "return select(2, pcall(utf8.codepoint, u, 3, 60000))",
    "return select('#', table.unpack(nums, 1, 65536))",
    "return select('#', table.unpack('abc', 1, 65536))",
    "return select(2, pcall(table.unpack, nums, 1, 'x'))",
    "local f = ('<i4'):rep(2000) .. '>i4!8Xdj' .. ('l'):rep(3000) \
     return table.concat({string.unpack(f, string.pack(f, table.unpack(nums, 1, 5002)))}, ',')",
    "return string.packsize(('i4'):rep(2000) .. '!8b' .. ('Xi8d'):rep(1500) .. 'c3' .. ('h'):rep(900))",
    "return string.packsize(('>!4i2Xi4bi8'):rep(1000))",
    "return select(2, pcall(function() return string.unpack(('i4'):rep(3000), ('x'):rep(5000)) end))",
    "return select(2, pcall(function() return string.packsize(('i4'):rep(3000) .. 's') end))",
    "return select(2, pcall(function() return string.packsize(('c100000000'):rep(3000)) end))",
    "return utf8.char(table.unpack(nums, 1, 20000))",
    "local n = {table.unpack(nums, 1, 9000)} n[7000] = -1 return select(2, pcall(function() return utf8.char(table.unpack(n)) end))",
    "local n = {table.unpack(nums, 1, 9000)} n[7000] = 'x' return select(2, pcall(function() return utf8.char(table.unpack(n)) end))",
    // os.date with a long format
    "return os.date('!' .. ('%Y-%m-%d %H:%M:%S %a %b %c %%|'):rep(300), 86400 * 365)",
    "return os.date('!' .. ('%c|%Ex|%Oy|'):rep(800), 123456789)",
    "return select(2, pcall(function() return os.date(('%Y'):rep(3000) .. '%Ez', 0) end))",
    "return select(2, pcall(function() return os.date(('%Y'):rep(3000) .. '%', 0) end))",
    // utf8.len of a long string
    "return utf8.len(u)",
    "return utf8.len(u, 5)",
    "return utf8.len(u, -300000, -2)",
    "return utf8.len(u, 262140, 600000)",
    "return select(2, utf8.len(u .. '\\xff' .. u))",
    "return select(2, utf8.len(('\\x80'):rep(600000)))",
    "return select(2, utf8.len(('a'):rep(262144) .. ('\\x80'):rep(10) .. 'b'))",
    "return select(2, utf8.len('\\xF8\\x88\\x80\\x80\\x80' .. u))",
    "return utf8.len('\\xF8\\x88\\x80\\x80\\x80' .. u, 1, -1, true)",
    "return select(2, pcall(function() return utf8.len(u, 0) end))",
    "return select(2, pcall(function() return utf8.len(u, 1, #u + 1) end))",
    // plain searches in long strings, by spans
    "return string.find(all, '\\255\\0\\1', 300000, true)",
    "return string.find(u, u:sub(-1000))",
    "return string.find(u, u:sub(262100, 262200), 262000)",
    "return string.find(u, u:sub(-300000))",
    "return string.find(u, u:sub(11, 300010), 2, true)",
    "return string.find(all, all:sub(11, 270009) .. 'z', 2, true)",
    "return string.find(all, all:sub(11, 270010), 2, true)",
    "return string.find(all, 'nope', 1, true)",
    "return string.find(all, '', 700000)",
    "return string.find(all, '', -5)",
    "return string.find(all, 'ab', -100000000)",
    "return string.find(all, 'xyz', #all + 2, true)",
    "return string.find(all, all:sub(262000, 263000), 3, true)",
    "return string.find(all, all:sub(262000, 263000), '3', true)",
    "return string.find(all, '%d')",
    // table functions on a plain table, in pieces
    "table.insert(t, 1, 'x') return table.concat(t, ',')",
    "table.insert(t, 3, 'x') table.insert(t, #t, 'y') table.insert(t, 'z') return table.concat(t, ',')",
    "local v = table.remove(t, 1) return v .. table.concat(t, ',')",
    "local v = table.remove(t, 2) local w = table.remove(t) return v .. w .. table.concat(t, ',')",
    "table.move(t, 1, 9000, 500) return table.concat(t, ',')",
    "table.move(t, 500, 10000, 1) return table.concat(t, ',')",
    "local m = table.move(t, 1, 10000, 3, {}) return table.concat(m, ',', 3)",
    "return table.concat(t, ', ', 2, 9999)",
    "return table.concat(nums, '')",
    "local b = {} for i = 1, 10000 do b[i] = i end b[7777] = {} return select(2, pcall(function() return table.concat(b, ',') end))",
    "return select(2, pcall(function() return table.insert(t, 10002, 'x') end))",
    // with metatables: element by element
    "local p = setmetatable({}, {__index = function(_, k) return k <= 5000 and tostring(k) or nil end, \
     __len = function() return 5000 end}) return table.concat(p, ',')",
    "local p = t for i = 1, 50 do p = setmetatable({}, {__index = p}) end \
     return select('#', table.unpack(p, 1, 6000)) .. select(6000, table.unpack(p, 1, 6000))",
    "local p = setmetatable({}, {__index = t}) return select('#', table.unpack(p))",
    "local seen = {} local p = setmetatable({}, {__newindex = function(_, k, v) seen[#seen + 1] = k end, \
     __index = t, __len = function() return 10000 end}) table.insert(p, 1, 'x') return #seen .. ':' .. seen[1] .. ':' .. seen[#seen]",
    "local p = table.pack(table.unpack(nums, 1, 20000)) return p.n .. ':' .. table.concat(p, ',')",
    "local p = table.pack(nil, 1, nil, table.unpack(nums, 1, 5000)) return p.n .. ':' .. tostring(p[1]) .. table.concat(p, ',', 4, p.n)",
    // sorts of long strings run in Lua
    "local a = ('x'):rep(100000) local l = {} for i = 1, 100 do l[i] = a .. (100 - i) end table.sort(l) \
     return l[1]:sub(-3) .. l[50]:sub(-3) .. l[100]:sub(-3)",
];

/// What a plain Lua state (Lua's own C functions) gives for `case`.
fn expected(case: &str) -> serde_json::Value {
    let lua = Lua::new();
    let src = format!("{SETUP}\nreturn fp((function() {case} end)())");
    match lua.load(&src).eval::<Value>().unwrap_or_else(|e| panic!("{case}: {e}")) {
        Value::Nil => serde_json::Value::Null,
        Value::Integer(i) => json!(i),
        Value::Number(n) => json!(n),
        Value::String(s) => json!(s.to_str().unwrap().to_string()),
        other => panic!("{case}: unexpected {other:?}"),
    }
}

#[test]
fn guarded_functions_give_what_lua_gives() {
    let b = Budget {
        memory: 256 << 20,
        timeout: Duration::from_secs(30),
        instructions: u64::MAX,
        max_string: DEFAULT_MAX_STRING,
    };
    let mut wrong = Vec::new();
    for case in CASES {
        let src = format!("{SETUP}\nfunction main() return fp((function() {case} end)()) end");
        let compiled = compile("t", &src, b).unwrap_or_else(|e| panic!("{case}: {e}"));
        let inst = Instance::from_bytecode("t", &compiled.bytecode, DEFAULT_MAX_STRING).unwrap();
        let mut run = inst.start(json!({}), b);
        let got = loop {
            match run.step(Duration::from_millis(1)) {
                Step::Yielded => {}
                Step::Done(o) => break o.result,
                other => panic!("{case}: unexpected {other:?}"),
            }
        };
        let want = expected(case);
        match got {
            Ok(v) if v == want => {}
            got => wrong.push(format!("{case}\n    sandbox: {got:?}\n    lua:     {want}")),
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases differ:\n{}", wrong.len(), CASES.len(), wrong.join("\n"));
}

/// The longest step of each operation of SECURITY.md's audit table on its
/// worst input at maxmem = 1 GiB, printed as the table's numbers. Each
/// step includes the 1 ms slice and up to about 2.5 ms of timer latency.
/// `cargo test -p sl-server --lib measure_worst_steps -- --ignored --nocapture`
#[test]
#[ignore]
fn measure_worst_steps() {
    const S: &str = "local a = 'x' for i = 1, 23 do a = a .. a end local b = a:sub(1, -2) .. 'y' \
                     local c = ('\\x80'):rep(8 * 1024 * 1024 - 1) local d = ('1'):rep(8 * 1024 * 1024)";
    let cases: &[(&str, &str)] = &[
        ("== / < of 8 MiB", "while true do local _ = a == b or a < b end"),
        (".. making 8 MiB", "local h = a:sub(2) while true do local _ = h .. 'z' end"),
        ("hash of a new 8 MiB key", "local t = {} local i = 0 while true do i = i + 1 t[a:sub(8) .. i] = true t = {} end"),
        ("string.sub of 8 MiB", "while true do local _ = a:sub(2) end"),
        ("tonumber of 8 MiB of digits", "while true do local _ = tonumber(d) end"),
        ("utf8.offset over 8 MiB", "local e = 'a' .. c while true do local _ = utf8.offset(e, 2) end"),
        ("string.upper of 8 MiB", "while true do local _ = a:upper() end"),
        ("string.reverse of 8 MiB", "while true do local _ = a:reverse() end"),
        ("utf8.len of 8 MiB", "while true do local _ = utf8.len(a) end"),
        ("string.rep to 8 MiB", "while true do local _ = ('x'):rep(8 * 1024 * 1024) end"),
        ("%q of 4 MiB", "local q = a:sub(1, 4 * 1024 * 1024) while true do local _ = ('%q'):format(q) end"),
        ("string.format %s of 8 MiB", "while true do local _ = ('%s'):format(a) end"),
        ("string.find (plain) in 8 MiB", "local n = b:sub(-1000) while true do local _ = a:find(n, 1, true) end"),
        ("string.pack of 4 MiB", "local h = a:sub(4 * 1024 * 1024) while true do local _ = string.pack('s', h) end"),
        ("table.concat to 8 MiB", "local t = {} for i = 1, 8 do t[i] = a:sub(1, 1024 * 1024) end \
                                    while true do local _ = table.concat(t) end"),
        ("table.unpack of 64 Ki", "local t = {} while true do local _ = select('#', table.unpack(t, 1, 65536)) end"),
        ("table.pack of 64 Ki bytes", "local s = a:sub(1, 65536) while true do local _ = table.pack(s:byte(1, -1)) end"),
        ("math.max of 64 Ki", "local t = {} for i = 1, 65536 do t[i] = i end while true do local _ = math.max(table.unpack(t)) end"),
        ("string.unpack of 64 Ki values", "local f = ('c0'):rep(65535) while true do local _ = select('#', string.unpack(f, 'x')) end"),
        ("utf8.char of 64 Ki", "local t = {} for i = 1, 65536 do t[i] = 200 end while true do local _ = utf8.char(table.unpack(t)) end"),
        ("json.encode of 4 MiB", "local h = a:sub(4 * 1024 * 1024) while true do local _ = json.encode(h) end"),
        ("http.response of 4 MiB of bytes", "local h = c:sub(4 * 1024 * 1024) while true do local _ = http.response(200, h) end"),
        ("string.find of an 8 MiB pattern", "local p = a:sub(2) while true do local _ = b:find(p) end"),
        ("table.insert at 1 of 1M", "local t = {} for i = 1, 1000000 do t[i] = i end while true do table.insert(t, 1, 0) table.remove(t, 1) end"),
        ("rehash of a 2^20-key table", "local t = {} for i = 1, 1 << 20 do t['k' .. i] = i end t.x = 1"),
    ];
    let b = Budget {
        memory: 1 << 30,
        timeout: Duration::from_millis(700),
        instructions: u64::MAX,
        max_string: DEFAULT_MAX_STRING,
    };
    println!("| operation | longest step (ms) | outcome |\n| --- | --- | --- |");
    for (name, body) in cases {
        let src = format!("function main() {S} {body} end");
        let compiled = compile("t", &src, b).unwrap();
        let inst = Instance::from_bytecode("t", &compiled.bytecode, DEFAULT_MAX_STRING).unwrap();
        let mut run = inst.start(json!({}), b);
        let mut longest = Duration::ZERO;
        let mut steps = 0;
        let result = loop {
            let t = std::time::Instant::now();
            let step = run.step(Duration::from_millis(1));
            steps += 1;
            // The first steps build the inputs.
            if steps > 5 {
                longest = longest.max(t.elapsed());
            }
            match step {
                Step::Yielded => {}
                Step::Done(o) => break o.result.map_err(|e| e.kind()),
                other => panic!("{other:?}"),
            }
        };
        println!("| {name} | {:.1} | {result:?} |", longest.as_secs_f64() * 1000.0);
    }
}
