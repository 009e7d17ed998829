//! Tests of the sandbox and its limits, driving runs the way the reactor does.

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn budget(memory_kb: usize, timeout_ms: u64, instructions: u64) -> Budget {
    Budget {
        memory: memory_kb * 1024,
        timeout: Duration::from_millis(timeout_ms),
        instructions,
        max_string: DEFAULT_MAX_STRING,
    }
}

const DEFAULT: (usize, u64, u64) = (16 * 1024, 2000, 100_000_000);

fn run_with(src: &str, args: serde_json::Value, b: Budget) -> (Outcome, u32) {
    let libs = |name: &str| match LIBS.iter().find(|(n, _)| *n == name) {
        Some((_, lib)) => compile(name, lib, b).map_err(|e| e.to_string()),
        None => Err(format!("require: no library action named '{name}'")),
    };
    let compiled = compile_with("t", src, b, &libs).unwrap_or_else(|e| panic!("compile failed: {e}"));
    let inst = Instance::from_bytecode("t", &compiled.bytecode, b.max_string).unwrap();
    let mut run = inst.start(args, b);
    let mut slices = 0;
    loop {
        match run.step(Duration::from_millis(1)) {
            Step::Yielded => slices += 1,
            Step::Call(c) => run.deliver(Ok(json!({"plugin": c.plugin, "action": c.action, "payload": c.payload}))),
            Step::Invoke(c) if c.action == "fails" => run.deliver(Err("action 'fails' failed (action): no".into())),
            Step::Invoke(c) => run.deliver(Ok(json!({"invoked": c.action, "args": c.args}))),
            Step::Publish(c) if c.topic == "missing" => run.deliver(Err("publish: no topic named 'missing'".into())),
            Step::Publish(c) => {
                let offset = c.payload.get("n").cloned().unwrap_or(json!(0));
                run.deliver(Ok(json!({"offset": offset, "partition": c.key.map_or(0, |k| k.len())})))
            }
            Step::Require(name) => match LIBS.iter().find(|(n, _)| *n == name) {
                Some((_, src)) => {
                    // Compiled without running (a cycle cannot be created, only updated into).
                    let lib = Instance::from_source(&name, src, b.max_string).unwrap().dump().unwrap();
                    run.deliver_module(&name, &lib)
                }
                None => run.deliver(Err(format!("require: no library action named '{name}'"))),
            },
            Step::Done(o) => return (o, slices),
        }
    }
}

/// Library actions the test executor above resolves `require` to.
const LIBS: &[(&str, &str)] = &[
    ("util", "local M = {} function M.double(x) return 2 * x end M.loads = (M.loads or 0) + 1 return M"),
    ("cyc", "local other = require('cyc') return {}"),
    ("notable", "return 42"),
    ("spins", "while true do end"),
];

fn run(src: &str, args: serde_json::Value) -> Outcome {
    let (m, t, i) = DEFAULT;
    run_with(src, args, budget(m, t, i)).0
}

fn err_kind(o: &Outcome) -> &'static str {
    o.result.as_ref().err().map(|e| e.kind()).unwrap_or("ok")
}

#[test]
fn hello_world() {
    let src =
        "function main(args)\n if args.name == nil then args.name = 'World' end\n return 'Hello ' .. args.name\nend";
    assert_eq!(run(src, json!({"name": "from Lua"})).result.unwrap(), json!("Hello from Lua"));
    assert_eq!(run(src, json!({})).result.unwrap(), json!("Hello World"));
}

#[test]
fn nil_and_message_is_an_action_error() {
    let o = run("function main() return nil, 'bad input' end", json!({}));
    assert_eq!(o.result.unwrap_err(), InvokeError::Action("bad input".into()));
}

#[test]
fn runtime_errors_carry_line_numbers() {
    let o = run("function main()\n  error('boom')\nend", json!({}));
    match o.result.unwrap_err() {
        InvokeError::Runtime(m) => assert!(m.contains("t:2: boom"), "{m}"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn syntax_errors_and_missing_main_fail_compile() {
    let b = budget(1024, 1000, 1_000_000);
    match compile("x", "function main(\n  return 1", b).unwrap_err() {
        InvokeError::Compile(m) => assert!(m.contains("x:2:"), "{m}"),
        e => panic!("{e:?}"),
    }
    assert!(matches!(compile("x", "local y = 1", b), Err(InvokeError::Compile(_))));
    assert!(matches!(compile("x", "while true do end", b), Err(InvokeError::Compile(_))));
}

#[test]
fn print_goes_to_bounded_logs() {
    let o = run("function main() print('a', 1, nil, true) return 1 end", json!({}));
    assert_eq!(o.logs, "a\t1\tnil\ttrue\n");
    let o = run("function main() for i = 1, 100000 do print(('x'):rep(100)) end return 1 end", json!({}));
    assert!(o.logs.len() < 70 * 1024 && o.logs.ends_with("[logs truncated]\n"), "{}", o.logs.len());
}

#[test]
fn memory_limit_aborts_evil() {
    let evil = "function main()\n strings = {}\n while true do table.insert(strings, 'evil') end\nend";
    let (o, _) = run_with(evil, json!({}), budget(1024, 10_000, u64::MAX));
    assert_eq!(err_kind(&o), "memory");
    assert!(o.peak_memory <= 1024 * 1024);
}

#[test]
fn memory_abort_cannot_be_caught() {
    let src = "function main()\n local ok = pcall(string.rep, 'x', 10 * 1024 * 1024)\n return 'survived'\nend";
    assert_eq!(err_kind(&run(src, json!({}))), "memory");
    let src = "function main()\n local t = {}\n while true do pcall(function() for i = 1, 1000 do t[#t + 1] = {} end end) end\nend";
    let (o, _) = run_with(src, json!({}), budget(1024, 5_000, u64::MAX));
    assert_eq!(err_kind(&o), "memory");
}

#[test]
fn timeout_aborts_spin_and_preempts() {
    let start = Instant::now();
    let (o, slices) = run_with("function main() while true do end end", json!({}), budget(1024, 200, u64::MAX));
    assert_eq!(err_kind(&o), "timeout");
    assert!(slices > 20, "spin yielded only {slices} times");
    assert!(start.elapsed() < Duration::from_millis(1000));
}

#[test]
fn instruction_budget_aborts() {
    let (o, _) = run_with(
        "function main() local x = 0 while true do x = x + 1 end end",
        json!({}),
        budget(1024, 10_000, 1_000_000),
    );
    assert_eq!(err_kind(&o), "instructions");
    assert!(o.instructions > 1_000_000 && o.instructions < 1_010_000, "{}", o.instructions);
}

#[test]
fn limits_cannot_be_outlived() {
    let cases = [
        "function main() while true do pcall(function() while true do end end) end end",
        "function main() while true do pcall(pcall, function() while true do end end) end end",
        "function main() while true do xpcall(function() while true do end end, function() while true do end end) end end",
        "function main() local co = coroutine.wrap(function() while true do pcall(function() while true do end end) end end) while true do pcall(co) end end",
        "function main() while true do local co = coroutine.create(function() while true do end end) coroutine.resume(co) end end",
        "function main() local t = setmetatable({}, {__index = function() while true do end end}) while true do pcall(function() return t.x end) end end",
        "function main() while true do pcall(table.sort, {3, 2, 1, 5, 4}, function(a, b) while true do end end) end end",
        "function main() while true do pcall(string.gsub, 'aaaa', 'a', function() while true do end end) end end",
        "function main() while true do pcall(function() local x <close> = setmetatable({}, {__close = function() while true do end end}) error('x') end) end end",
    ];
    for src in cases {
        let start = Instant::now();
        let (o, _) = run_with(src, json!({}), budget(4096, 300, u64::MAX));
        assert_eq!(err_kind(&o), "timeout", "{src}: {:?}", o.result);
        assert!(start.elapsed() < Duration::from_millis(800), "{src} took {:?}", start.elapsed());
    }
}

#[test]
fn coroutines_keep_their_semantics_under_preemption() {
    let src = r#"
function main()
  local co = coroutine.wrap(function()
    for i = 1, 3 do
      local x = 0
      for j = 1, 3000000 do x = x + 1 end
      coroutine.yield(i)
    end
  end)
  return {co(), co(), co()}
end"#;
    let (o, slices) = run_with(src, json!({}), budget(4096, 20_000, u64::MAX));
    assert_eq!(o.result.unwrap(), json!([1, 2, 3]));
    assert!(slices > 0, "a long coroutine should have been preempted");
}

#[test]
fn dangerous_globals_are_absent() {
    let src = r#"
function main()
  return {
    io = type(io), debug = type(debug), package = type(package),
    dofile = type(dofile), loadfile = type(loadfile), collectgarbage = type(collectgarbage),
    dump = type(string.dump), execute = type(os.execute), getenv = type(os.getenv),
    strmeta = tostring(getmetatable('')), time = type(os.time),
  }
end"#;
    assert_eq!(
        run(src, json!({})).result.unwrap(),
        json!({"io": "nil", "debug": "nil", "package": "nil", "dofile": "nil",
               "loadfile": "nil", "collectgarbage": "nil", "dump": "nil", "execute": "nil",
               "getenv": "nil", "strmeta": "false", "time": "function"})
    );
}

#[test]
fn binary_chunks_and_finalizers_are_refused() {
    let src = r#"
function main()
  local f, err = load("\27Lua\84\0", "x", "b")
  local ok, gc = pcall(setmetatable, {}, {__gc = function() end})
  local g = load("return 1 + 1")
  return {loaded = f ~= nil, err = err, gc = ok, gcmsg = gc, text = g()}
end"#;
    let v = run(src, json!({})).result.unwrap();
    assert_eq!(v["loaded"], json!(false));
    assert!(v["err"].as_str().unwrap().contains("binary"), "{v}");
    assert_eq!(v["gc"], json!(false));
    assert_eq!(v["text"], json!(2));
}

#[test]
fn globals_persist_in_a_warm_instance() {
    let b = budget(1024, 1000, 1_000_000);
    let c = compile("t", "count = 0 function main() count = count + 1 return count end", b).unwrap();
    let mut inst = Instance::from_bytecode("t", &c.bytecode, DEFAULT_MAX_STRING).unwrap();
    for expected in 1..=3 {
        let mut run = inst.start(json!({}), b);
        let Step::Done(o) = run.step(Duration::from_millis(10)) else { panic!("yielded") };
        assert_eq!(o.result.as_ref().unwrap(), &json!(expected));
        inst = run.take_instance(&o).unwrap();
    }
}

#[test]
fn unconvertible_results_are_clear_errors() {
    let o = run("function main() return {1, 2, x = 3} end", json!({}));
    match o.result.unwrap_err() {
        InvokeError::Runtime(m) => assert!(m.contains("mixes"), "{m}"),
        e => panic!("{e:?}"),
    }
    assert_eq!(run("function main() return json.null end", json!({})).result.unwrap(), json!(null));
    assert_eq!(run("function main(a) return a end", json!({"xs": []})).result.unwrap(), json!({"xs": []}));
}

#[test]
fn scalar_results_are_converted_as_inside_a_table() {
    // A scalar result is read off the Lua stack, a table member through
    // mlua: both must give the same JSON and the same errors.
    for expr in [
        "'Hello'",
        "''",
        "'\\xff\\xfe'",
        "'\\u{1F600} caf\\u{E9}'",
        "string.rep('ab', 5000)",
        "42",
        "-7",
        "math.maxinteger",
        "math.mininteger",
        "3.0",
        "-0.0",
        "0.1",
        "1e308",
        "2^53",
        "1/0",
        "-1/0",
        "0/0",
        "true",
        "false",
        "'a' .. 1",
    ] {
        let alone = run(&format!("function main() return {expr}, 'ignored' end"), json!({})).result;
        let inside = run(&format!("function main() return {{v = {expr}}} end"), json!({})).result;
        match (alone, inside) {
            (Ok(a), Ok(t)) => assert_eq!(a, t["v"], "{expr}"),
            (Err(InvokeError::Runtime(a)), Err(InvokeError::Runtime(t))) => {
                assert_eq!(a.replace("at $:", "at $.v:"), t, "{expr}")
            }
            (a, t) => panic!("{expr}: {a:?} alone, {t:?} in a table"),
        }
    }
    // A string result counts against maxmem as before.
    let src = "function main() local s = string.rep('x', 40000) return s end";
    let (o, _) = run_with(src, json!({}), budget(100, 1000, u64::MAX));
    assert_eq!(err_kind(&o), "memory", "{:?}", o.result);
    let (o, _) = run_with(src, json!({}), budget(200, 1000, u64::MAX));
    assert_eq!(o.result.unwrap().as_str().map(str::len), Some(40000));
}

#[test]
fn deep_recursion_ends_in_a_limit() {
    let src = "function main() local function f() return f() + 1 end while true do pcall(f) end end";
    let (o, _) = run_with(src, json!({}), budget(4096, 300, u64::MAX));
    assert!(matches!(err_kind(&o), "memory" | "timeout"), "{:?}", o.result);
    let (o, _) = run_with(src, json!({}), budget(256 * 1024, 300, u64::MAX));
    assert!(matches!(err_kind(&o), "memory" | "timeout"), "{:?}", o.result);
}

#[test]
fn nested_coroutines_are_preempted_and_keep_their_values() {
    let src = r#"
local function burn(n) local x = 0 for i = 1, n do x = x + 1 end return x end
function main()
  local out = {}
  local outer = coroutine.create(function()
    local inner = coroutine.wrap(function()
      for i = 1, 3 do burn(2000000) coroutine.yield('inner' .. i) end
      return 'inner done'
    end)
    for i = 1, 4 do
      local ok, v = pcall(inner)
      coroutine.yield(v)
    end
    return 'outer done'
  end)
  while true do
    local ok, v = coroutine.resume(outer)
    out[#out + 1] = v
    if coroutine.status(outer) == 'dead' then break end
  end
  return out
end"#;
    let (o, slices) = run_with(src, json!({}), budget(4096, 30_000, u64::MAX));
    assert_eq!(o.result.unwrap(), json!(["inner1", "inner2", "inner3", "inner done", "outer done"]));
    assert!(slices > 3, "only {slices} slices");
}

#[test]
fn top_level_yield_is_an_error() {
    let o = run("function main() coroutine.yield(1) return 2 end", json!({}));
    assert!(
        matches!(o.result, Err(InvokeError::Runtime(ref m)) if m.contains("outside a coroutine")),
        "{:?}",
        o.result
    );
}

#[test]
fn string_patterns_behave_like_lua() {
    let src = r#"
function main()
  local out = {}
  out.find = {string.find('hello world', 'o w')}
  out.findp = {('a.b'):find('.', 1, true)}
  out.cap = {string.match('key=value', '(%w+)=(%w+)')}
  out.pos = {string.find('abc', '()b()')}
  local words = {}
  for w in string.gmatch('one two three', '%a+') do words[#words + 1] = w end
  out.words = words
  out.gsub = {string.gsub('hello world', 'o', '0')}
  out.gsubf = (string.gsub('abc', '%w', function(c) return c:upper() .. '.' end))
  out.gsubt = (string.gsub('$a $b', '%$(%w)', {a = 'x', b = false}))
  out.nomatch = string.match('abc', '%d') == nil
  out.err = select(2, pcall(string.find, 'a', '[a'))
  return out
end"#;
    let v = run(src, json!({})).result.unwrap();
    assert_eq!(v["find"], json!([5, 7]));
    assert_eq!(v["findp"], json!([2, 2]));
    assert_eq!(v["cap"], json!(["key", "value"]));
    assert_eq!(v["pos"], json!([2, 2, 2, 3]));
    assert_eq!(v["words"], json!(["one", "two", "three"]));
    assert_eq!(v["gsub"], json!(["hell0 w0rld", 2]));
    assert_eq!(v["gsubf"], json!("A.B.C."));
    assert_eq!(v["gsubt"], json!("x $b"));
    assert_eq!(v["nomatch"], json!(true));
    assert!(v["err"].as_str().unwrap().contains("missing ']'"), "{v}");
}

#[test]
fn crafted_patterns_cannot_outlive_the_timeout() {
    let cases = [
        "function main() return string.find(string.rep('a', 5000), '.-.-.-.-.-.-.-.-.-.-b') end",
        "function main() while true do pcall(string.match, string.rep('a', 3000), '(.-)(.-)(.-)(.-)(.-)x') end end",
        "function main() for w in string.gmatch(string.rep('a', 4000), '.-.-.-.-.-.-b') do end end",
        "function main() return string.gsub(string.rep('a', 3000), '.-.-.-.-.-.-b', 'x') end",
        "function main() return string.gsub('aaaa', 'a', function() while true do end end) end",
        "function main() return string.gsub('aaaa', 'a', setmetatable({}, {__index = function() while true do end end})) end",
    ];
    for src in cases {
        let start = Instant::now();
        let (o, _) = run_with(src, json!({}), budget(16 * 1024, 300, u64::MAX));
        assert_eq!(err_kind(&o), "timeout", "{src}: {:?}", o.result);
        assert!(start.elapsed() < Duration::from_millis(1500), "{src} took {:?}", start.elapsed());
    }
    // Below what one call may take before it would hold the reactor too
    // long, the instruction budget is what cuts a call off.
    let (o, _) = run_with(cases[0], json!({}), budget(16 * 1024, 60_000, 100_000));
    assert_eq!(err_kind(&o), "instructions", "{:?}", o.result);
    // Above it, the call is paused every slice and runs to its deadline.
    let start = Instant::now();
    let (o, slices) = run_with(cases[0], json!({}), budget(16 * 1024, 500, u64::MAX));
    assert_eq!(o.result, Err(InvokeError::Limit(LimitKind::Timeout)));
    assert!(slices > 10, "{slices} slices");
    assert!(start.elapsed() < Duration::from_millis(700), "took {:?}", start.elapsed());
}

#[test]
fn gsub_output_counts_against_memory() {
    let src =
        "function main() local s = string.rep('x', 10000) return #string.gsub(s, 'x', string.rep('y', 10000)) end";
    let (o, _) = run_with(src, json!({}), budget(1024, 10_000, u64::MAX));
    assert_eq!(err_kind(&o), "memory", "{:?}", o.result);
}

#[test]
fn call_yields_to_the_executor_and_resumes_with_the_result() {
    let src =
        "function main() local r = call('p', 'act', {n = 1}) local ok, e = pcall(call, 5) return {r = r, e = e} end";
    let v = run(src, json!({})).result.unwrap();
    assert_eq!(v["r"], json!({"plugin": "p", "action": "act", "payload": {"n": 1}}));
    assert!(v["e"].as_str().unwrap().contains("plugin name expected"), "{v}");
}

/// The sandbox's Lua versions of `string.gsub` (function and table
/// replacements), `string.rep` and the table functions give the same
/// results and errors as Lua's own C functions.
#[test]
fn lua_library_replacements_behave_like_lua() {
    let cases = [
        "string.gsub('hello world', '%w+', function(w) return w:upper() end)",
        "string.gsub('hello world', '(%w+) (%w+)', function(a, b) return b .. ' ' .. a end)",
        "string.gsub('abc', '', function() return '-' end)",
        "string.gsub('abc', 'x*', function() return '-' end)",
        "string.gsub('abc', 'b*', function(m) return '<' .. m .. '>' end)",
        "string.gsub('hello', '()l', function(p) return p end)",
        "string.gsub('hello', 'l', function() return nil end)",
        "string.gsub('hello', 'l', function() return false end)",
        "string.gsub('hello', 'l', function() return 1.5 end)",
        "string.gsub('hello', 'l', function() return 7 end)",
        "string.gsub('hello hello', 'l+', function(m) return '[' .. m .. ']' end, 1)",
        "string.gsub('hello', '.', function(c) return c .. c end, 0)",
        "string.gsub('hello', '.', function(c) return c end, -3)",
        "string.gsub('hello', '^h', function(c) return 'J' end)",
        "string.gsub('hello', '^x', function(c) return 'J' end)",
        "string.gsub('hello', '^', function() return '>' end)",
        "string.gsub('', '', function() return 'e' end)",
        "string.gsub('', 'a', function() return 'e' end)",
        "string.gsub('a.b.c', '%.', {['.'] = '/'})",
        "string.gsub('$name is $age', '%$(%w+)', {name = 'Ann', age = 7})",
        "string.gsub('$name', '%$(%w+)', {})",
        "string.gsub(12345, '3', function() return 'x' end)",
        "string.gsub('a b', '%s', function() return {} end)",
        "string.gsub('abc', '(', function() return '' end)",
        "string.gsub('x', 'x', function() error('inner') end)",
        "string.gsub('hello', 'l', function() return 'L' end, 1.5)",
        "string.rep('', 1e6)",
        "string.rep('', 10, '')",
        "string.rep('ab', 3, ',')",
        "string.rep('', 3, ',')",
        "string.rep('', 1.5)",
        "string.rep('x', -1)",
        "(function() local t = {3, 1, 2} table.sort(t) return table.concat(t, ',') end)()",
        "(function() local t = {} for i = 1, 5000 do t[i] = (i * 7919) % 5003 end table.sort(t) \
           for i = 2, #t do if t[i - 1] > t[i] then return 'unsorted' end end return t[1] .. '/' .. t[5000] end)()",
        "(function() local t = {} for i = 1, 300 do t[i] = (i * 31) % 97 end table.sort(t, function(a, b) return a > b end) \
           return table.concat(t, ',') end)()",
        "(function() local t = {'b', 'a', 'c'} table.sort(t, function(a, b) return a < b end) return table.concat(t) end)()",
        "(function() local t = {3, 'a'} table.sort(t) end)()",
        "(function() table.sort({1, 2}, 3) end)()",
        "(function() table.sort(5) end)()",
        "(function() local p = setmetatable({}, {__index = function(_, i) return 10 - i end, __len = function() return 3 end}) \
           return table.concat(p, ',') end)()",
        "(function() local p = setmetatable({}, {__index = function(_, i) if i < 3 then return 'v' .. i end end, \
           __len = function() return 3 end}) return table.concat(p, ',') end)()",
        "(function() local p = setmetatable({'a', 'b'}, {}) return table.concat(p, '-', 1, 2) end)()",
        "(function() local p = setmetatable({'a', 'b'}, {}) return table.concat(p, {}) end)()",
        "(function() local p = setmetatable({'a', 'b'}, {}) table.insert(p, 'c') table.insert(p, 1, 'z') \
           return table.concat(p, ',') end)()",
        "(function() local p = setmetatable({'a', 'b'}, {}) table.insert(p, 5, 'c') end)()",
        "(function() local p = setmetatable({'a', 'b'}, {}) table.insert(p, 1, 2, 3) end)()",
        "(function() local p = setmetatable({'a', 'b', 'c'}, {}) local r = table.remove(p, 1) \
           return r .. ':' .. table.concat(p, ',') .. ':' .. tostring(table.remove(p)) .. ':' .. #p end)()",
        "(function() local p = setmetatable({}, {}) return tostring(table.remove(p)) .. tostring(table.remove(p, 1)) end)()",
        "(function() local p = setmetatable({'a'}, {}) table.remove(p, 5) end)()",
        "(function() local t = table.move({1, 2, 3}, 1, 3, 2) return table.concat(t, ',') end)()",
        "(function() local t = table.move({1, 2, 3}, 2, 3, 1) return table.concat(t, ',') end)()",
        "(function() local a = setmetatable({1, 2, 3}, {}) local b = table.move(a, 1, 3, 3, {}) \
           return tostring(b[1]) .. ',' .. b[3] .. ',' .. b[5] end)()",
        "(function() local a = setmetatable({1, 2, 3}, {}) table.move(a, 1, 3, 2) return table.concat(a, ',') end)()",
        "(function() local t = table.move({}, 1, 1e4, 1) return #t end)()",
        "(function() table.move({}, 1, math.maxinteger, 2) end)()",
        "(function() table.move({}, -1, math.maxinteger, 2) end)()",
        "(function() table.move(setmetatable({}, {}), 1, 2, math.maxinteger) end)()",
    ];
    let serialize = "local function show(ok, ...) \
        local out = {tostring(ok)} \
        for i = 1, select('#', ...) do out[#out + 1] = type((select(i, ...))) .. ':' .. tostring((select(i, ...))) end \
        return table.concat(out, ' ') end ";
    // What Lua's C loop would take hours over returns at once.
    let o = run("function main() return #string.rep('', 1e15) + #string.rep('', math.maxinteger, '') end", json!({}));
    assert_eq!(o.result, Ok(json!(0)));
    let plain = mlua::Lua::new();
    for case in cases {
        let code = format!("{serialize} return show(pcall(function() return {case} end))");
        let want: String = plain.load(&code).eval().unwrap_or_else(|e| panic!("{case}: {e}"));
        let src = format!("function main() {code} end");
        let got = run(&src, json!({})).result.unwrap_or_else(|e| panic!("{case}: {e}"));
        // Error positions name the sandbox's prelude instead of a C function.
        let strip = |s: &str| s.replace("[C]: ", "").replace("sandbox:", "");
        let got = got.as_str().unwrap().to_string();
        if strip(&got) != strip(&want) {
            // Errors may differ in the position prefix only.
            let message =
                |s: &str| s.strip_prefix("false string:").map(|m| m.rsplit(": ").next().unwrap_or(m).to_string());
            assert!(
                message(&got).is_some() && message(&got) == message(&want),
                "{case}:\n sandbox: {got}\n lua:     {want}"
            );
        }
    }
}

/// Sorts with a comparator, and table functions on tables with
/// metatables, run in Lua: they are paused for other work and carry on.
#[test]
fn table_functions_in_lua_are_preempted_and_carry_on() {
    let src = "function main()
        local t = {}
        for i = 1, 30000 do t[i] = (i * 7919) % 30011 end
        table.sort(t, function(a, b) return a > b end)
        for i = 2, #t do assert(t[i - 1] >= t[i]) end
        local p = setmetatable({}, {__index = function(_, i) return tostring(i % 10) end, __len = function() return 20000 end})
        local s = table.concat(p)
        return {first = t[1], last = t[#t], len = #s}
    end";
    let (o, slices) = run_with(src, json!({}), budget(16 * 1024, 10_000, u64::MAX));
    assert_eq!(o.result, Ok(json!({"first": 30010, "last": 1, "len": 20000})));
    assert!(slices > 2, "only {slices} slices");
}

#[test]
fn invoke_yields_to_the_executor_with_the_callee_and_its_args() {
    let o = run("function main() return invoke('other', {x = 1}) end", json!({}));
    assert_eq!(o.result.unwrap(), json!({"invoked": "other", "args": {"x": 1}}));
    let o = run("function main() return invoke('other') end", json!({}));
    assert_eq!(o.result.unwrap(), json!({"invoked": "other", "args": {}}));
    // A failed callee is an error the caller can catch.
    let o = run("function main() local ok, e = pcall(invoke, 'fails', {}) return {ok, e} end", json!({}));
    assert_eq!(o.result.unwrap(), json!([false, "action 'fails' failed (action): no"]));
    // From inside a coroutine too.
    let src = "function main() local co = coroutine.wrap(function() return invoke('c', {}) end) return co() end";
    assert_eq!(run(src, json!({})).result.unwrap(), json!({"invoked": "c", "args": {}}));
    for (src, needle) in [
        ("function main() return invoke(1) end", "action name expected"),
        ("function main() return invoke('a', 'b') end", "table expected"),
        ("function main() return invoke('a', {1, 2}) end", "table with string keys"),
    ] {
        let o = run(src, json!({}));
        let msg = o.result.unwrap_err().to_string();
        assert!(msg.contains(needle), "{src}: {msg}");
    }
}

#[test]
fn require_loads_a_library_once_per_instance() {
    let src = "local util = require('util') function main(a) return {util.double(a.x), util.loads, require('util') == util} end";
    assert_eq!(run(src, json!({"x": 21})).result.unwrap(), json!([42, 1, true]));
    let o = run("function main() return require('missing') end", json!({}));
    assert!(o.result.unwrap_err().to_string().contains("no library action named 'missing'"));
    let o = run("function main() return require('notable') end", json!({}));
    assert!(o.result.unwrap_err().to_string().contains("must return a table (it returned number)"));
    let o = run("function main() return require('cyc') end", json!({}));
    assert!(o.result.unwrap_err().to_string().contains("require cycle"));
    // The library runs under the caller's limits.
    let (m, _, i) = DEFAULT;
    let (o, _) = run_with("function main() return require('spins') end", json!({}), budget(m, 100, i));
    assert_eq!(err_kind(&o), "timeout");
}

#[test]
fn a_library_compiles_but_cannot_be_invoked() {
    let lib = "return { f = function() return 1 end }";
    let compiled = compile("lib", lib, budget(1024, 1000, 1_000_000)).unwrap();
    let inst = Instance::from_bytecode("lib", &compiled.bytecode, DEFAULT_MAX_STRING).unwrap();
    let mut run = inst.start(json!({}), budget(1024, 1000, 1_000_000));
    let Step::Done(o) = run.step(Duration::from_millis(10)) else { panic!("yielded") };
    assert_eq!(err_kind(&o), "library");
    // Neither main nor a table: not an action.
    let e = compile("x", "return 1", budget(1024, 1000, 1_000_000)).unwrap_err();
    assert!(e.to_string().contains("does not define a global function 'main'"), "{e}");
}

#[test]
fn json_array_marks_tables_as_arrays() {
    let o = run("function main() return {json.array(), json.array({1, 2}), {}} end", json!({}));
    assert_eq!(o.result.unwrap(), json!([[], [1, 2], {}]));
    let o = run("function main() return json.array(setmetatable({}, {})) end", json!({}));
    assert!(o.result.unwrap_err().to_string().contains("already has a metatable"));
}

#[test]
fn http_response_builds_a_marked_table() {
    let src = r#"function main() return {
        http.response{status = 201, headers = {Location = '/x'}, body = {id = 1}},
        http.response(200, 'text'),
        http.response(200, '\255'),
        http.response(204),
      } end"#;
    let v = run(src, json!({})).result.unwrap();
    assert_eq!(v[0], json!({"$sl_response": true, "status": 201, "headers": {"Location": "/x"}, "json": {"id": 1}}));
    assert_eq!((&v[1]["body"], &v[2]["body_base64"], &v[3]["status"]), (&json!("text"), &json!("/w=="), &json!(204)));
    for (src, needle) in [
        ("http.response(99)", "status must be"),
        ("http.response(100, 'HTTP/1.1 200 OK\\r\\n\\r\\n')", "status 100 is informational (1xx)"),
        ("http.response{status = 101, headers = {Upgrade = 'websocket'}}", "status 101 is informational (1xx)"),
        ("http.response(103)", "status 103 is informational (1xx)"),
        ("http.response(199)", "status 199 is informational (1xx)"),
        ("http.response(600)", "status must be"),
        ("http.response{status = 200, headers = {['a b'] = 'x'}}", "invalid header name"),
        ("http.response{status = 200, headers = {X = 'a\\nb'}}", "without line breaks"),
        ("http.response{status = 200, headers = {['Content-Length'] = '1'}}", "set by the server"),
        ("http.response(200, true)", "body must be"),
    ] {
        let o = run(&format!("function main() return {src} end"), json!({}));
        let msg = o.result.unwrap_err().to_string();
        assert!(msg.contains(needle), "{src}: {msg}");
    }
}

/// Runs `src` like [`run_with`] (without plugin calls, invokes or
/// requires) and returns the outcome and its longest step.
fn run_steps(src: &str, b: Budget) -> (Outcome, Duration) {
    let compiled = compile("t", src, b).unwrap_or_else(|e| panic!("compile failed: {e}"));
    let inst = Instance::from_bytecode("t", &compiled.bytecode, DEFAULT_MAX_STRING).unwrap();
    let mut run = inst.start(json!({}), b);
    let mut longest = Duration::ZERO;
    loop {
        let t = Instant::now();
        let step = run.step(Duration::from_millis(1));
        longest = longest.max(t.elapsed());
        match step {
            Step::Yielded => {}
            Step::Done(o) => return (o, longest),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Two 8 MiB strings that differ in their last byte, built by doubling:
/// `a == b` is one instruction and one 8 MiB `memcmp` (about a
/// millisecond), so a thousand of them, one hook interval, take a second.
const TWO_LONG_STRINGS: &str = "local a = 'x' for i = 1, 23 do a = a .. a end local b = a:sub(1, -2) .. 'y'";

/// The longest step the tests below allow: the slice (1 ms), the timer's
/// tick and grace, one expensive instruction, and room for a debug build
/// on a busy machine.
const STEP_BOUND: Duration = Duration::from_millis(30);

#[test]
fn expensive_instructions_are_preempted_at_the_end_of_the_slice() {
    let src = format!("function main() {TWO_LONG_STRINGS} while true do local _ = a == b end end");
    let armed = armed_firings();
    let (o, longest) = run_steps(&src, budget(64 * 1024, 300, u64::MAX));
    assert_eq!(err_kind(&o), "timeout");
    assert!(longest < STEP_BOUND, "a step took {longest:?}");
    assert!(armed_firings() > armed, "the timer never armed the hook");
}

#[test]
fn expensive_instructions_in_a_coroutine_are_preempted() {
    let src = format!(
        "function main() {TWO_LONG_STRINGS} local co = coroutine.wrap(function() while true do local _ = a == b end end) co() end"
    );
    let (o, longest) = run_steps(&src, budget(64 * 1024, 300, u64::MAX));
    assert_eq!(err_kind(&o), "timeout");
    assert!(longest < STEP_BOUND, "a step took {longest:?}");
}

#[test]
fn expensive_instructions_that_cannot_yield_stop_at_the_stall_limit() {
    // A __close handler run by coroutine.close and an xpcall message
    // handler (neither can yield, in Lua 5.4 either).
    let cases = [
        "local co = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() \
         while true do local _ = a == b end end}) coroutine.yield() end) coroutine.resume(co) coroutine.close(co)",
        "xpcall(error, function() while true do local _ = a == b end end)",
    ];
    for case in cases {
        let src = format!("function main() {TWO_LONG_STRINGS} {case} end");
        let (o, longest) = run_steps(&src, budget(64 * 1024, 2000, u64::MAX));
        assert_eq!(err_kind(&o), "timeout", "{case}");
        assert!(matches!(o.result, Err(InvokeError::Limit(LimitKind::Stall))), "{case}: {:?}", o.result);
        assert!(longest < STALL_LIMIT + STEP_BOUND, "{case}: a step took {longest:?}");
    }
}

#[test]
fn a_deep_stack_does_not_slow_arming() {
    // Arming touches one field of the running thread, not its frames.
    let src = format!(
        "function main() {TWO_LONG_STRINGS} local function f(n) if n == 0 then while true do local _ = a == b end end \
         return 1 + f(n - 1) end return f(150000) end"
    );
    let (o, longest) = run_steps(&src, budget(64 * 1024, 500, u64::MAX));
    assert_eq!(err_kind(&o), "timeout");
    assert!(longest < STEP_BOUND, "a step took {longest:?}");
}

#[test]
fn no_string_is_longer_than_max_string_whatever_maxmem() {
    let b = budget(1024 * 1024, 5000, u64::MAX);
    let longest = "function main() local s = 'x' for i = 1, 23 do s = s .. s end return #s end";
    assert_eq!(run_with(longest, json!({}), b).0.result.unwrap(), json!(DEFAULT_MAX_STRING));
    for src in [
        "function main() local s = 'x' for i = 1, 23 do s = s .. s end return #(s .. 'y') end",
        "function main() local s = 'x' for i = 1, 23 do s = s .. s end local ok = pcall(function() return s .. s end) return ok end",
        "function main() return #string.rep('x', 8 * 1024 * 1024 + 1) end",
        "function main() return #table.concat({string.rep('x', 4 * 1024 * 1024), string.rep('y', 4 * 1024 * 1024), 'z'}) end",
    ] {
        let o = run_with(src, json!({}), b).0;
        assert_eq!(o.result, Err(InvokeError::Limit(LimitKind::StringLength(DEFAULT_MAX_STRING))), "{src}");
        assert_eq!(err_kind(&o), "memory");
        let message = o.result.unwrap_err().to_string();
        assert!(message.contains("at most 8 MiB on this server (Limits.max_string"), "{message}");
    }
}

#[test]
fn a_state_made_with_a_larger_max_string_holds_longer_strings() {
    let b = Budget { max_string: 32 << 20, ..budget(1024 * 1024, 5000, u64::MAX) };
    let src = "function main() local s = string.rep('x', 8 * 1024 * 1024 + 1) local t = s .. s .. s return #t end";
    assert_eq!(run_with(src, json!({}), b).0.result.unwrap(), json!(3 * (8 * 1024 * 1024 + 1)));
    let over = "function main() local s = string.rep('x', 16 * 1024 * 1024) return #(s .. s .. 'x') end";
    let o = run_with(over, json!({}), b).0;
    assert_eq!(o.result, Err(InvokeError::Limit(LimitKind::StringLength(32 << 20))));
    assert!(o.result.unwrap_err().to_string().contains("at most 32 MiB"));
}

/// One pattern call that needs far more than a time slice (and more than
/// the 20 ms stall bound) is paused and resumed like Lua code, and gives
/// Lua's results: find and match with captures, gmatch, and gsub.
#[test]
fn long_pattern_calls_are_paused_not_stopped() {
    let cases = [
        // Anchored: one start position, backtracking over 4 million bytes.
        ("return string.find(string.rep('a', 4000000), '^a*.?b$')", json!(null)),
        (
            "local s = string.rep('a', 4000000) .. 'b' return {string.find(s, '^(a*)(.?)b$')}",
            json!([1, 4000001, "a".repeat(4000000), ""]),
        ),
        ("local s = string.rep('ab', 1000000) return #string.match(s, '^(.*)b$')", json!(1999999)),
        (
            "local s = string.rep('a', 3000000) .. 'x' local n = 0 for w in s:gmatch('a-x') do n = n + #w end return n",
            json!(3000001),
        ),
        (
            "local s = string.rep('a', 4000000) local r, n = string.gsub(s, 'a-$', '<%0>') return {#r, n}",
            json!([4000002, 1]),
        ),
        (
            "local co = coroutine.wrap(function() return string.find(string.rep('a', 4000000), '^a*.?b$') end) \
          return co() == nil",
            json!(true),
        ),
    ];
    for (body, want) in cases {
        let (o, slices) = run_with(&format!("function main() {body} end"), json!({}), budget(65536, 60_000, 1 << 40));
        assert_eq!(o.result, Ok(want), "{body}");
        assert!(slices > 2, "{body}: {slices} slices");
    }
}

/// A pattern call paused in code that cannot yield (here an `xpcall`
/// message handler) counts against the stall bound, as before.
#[test]
fn a_long_pattern_call_where_lua_cannot_yield_is_still_bounded() {
    let src = "function main()
      return xpcall(error, function()
        return tostring(string.find(string.rep('a', 5000), '.-.-.-.-.-.-b'))
      end)
    end";
    let (o, _) = run_with(src, json!({}), budget(262144, 60_000, 1 << 40));
    assert_eq!(o.result, Err(InvokeError::Limit(LimitKind::Stall)));
}

/// Library calls with as many values as one call may return
/// (`VALUES_MAX`) give what Lua 5.4 gives (checked against `lua5.4`): a
/// guarded function's Lua version gets them in a table, or they stay with
/// Lua's C function. One value more is the error C raises at Lua's own
/// stack limit, located at the caller's line.
#[test]
fn calls_with_the_most_values_give_lua_results_and_one_more_is_an_error() {
    let most = super::decide::VALUES_MAX;
    let fill = |n: i64, v: u32| format!("local codes = {{}} for i = 1, {n} do codes[i] = {v} end ");
    for (body, want) in [
        (format!("{}return #utf8.char(table.unpack(codes))", fill(most, 0x4e00)), json!(3 * most)),
        (format!("{}return select('#', table.unpack(codes))", fill(most, 65)), json!(most)),
        (format!("{}return #string.char(table.unpack(codes))", fill(most, 65)), json!(most)),
        (format!("return select('#', string.unpack(('c0'):rep({}), 'x'))", most - 1), json!(most)),
        (format!("return select('#', ('a'):rep({most}):byte(1, -1))"), json!(most)),
        (format!("return select('#', utf8.codepoint(('a'):rep({most}), 1, -1))"), json!(most)),
        ("return string.packsize(('i4'):rep(999000))".to_string(), json!(3996000)),
    ] {
        let o = run_with(&format!("function main() {body} end"), json!({}), budget(65536, 5000, 1 << 40)).0;
        assert_eq!(o.result, Ok(want), "{body}");
    }
    let over = most + 1;
    for (body, want) in [
        (format!("{}return table.unpack(codes)", fill(over, 65)), "too many results to unpack"),
        (format!("return table.unpack({{}}, 1, {over})"), "too many results to unpack"),
        (format!("return table.unpack(('a'):rep({over}))"), "too many results to unpack"),
        (
            format!("return table.unpack(setmetatable({{}}, {{__len = function() return {over} end}}))"),
            "too many results to unpack",
        ),
        (format!("return string.unpack(('c0'):rep({most}), 'x')"), "stack overflow (too many results)"),
        (format!("return ('a'):rep({over}):byte(1, -1)"), "stack overflow (string slice too long)"),
        (format!("return string.byte(('a'):rep({over}), -{over}, {over})"), "stack overflow (string slice too long)"),
        (format!("return utf8.codepoint(('a'):rep({over}), 1, -1)"), "stack overflow (string slice too long)"),
    ] {
        let o = run_with(&format!("function main()\n{body}\nend"), json!({}), budget(65536, 5000, 1 << 40)).0;
        match &o.result {
            Err(InvokeError::Runtime(m)) => {
                assert!(m.ends_with(&format!(":2: {want}")), "{body}: {m} (the caller's line, and C's message)")
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

/// Metamethods that Lua's C library would call where nothing can yield
/// (`__tostring` from `tostring`, `print` and `string.format`, `__index`
/// from the `ipairs` iterator, `__lt` from `table.sort`) are paused like
/// any Lua code: one that works far longer than the 20 ms stall bound
/// finishes with its result.
#[test]
fn metamethods_run_by_tostring_and_ipairs_are_paused() {
    let slow = "local function slow() local n = 0 for i = 1, 5000000 do n = n + i end return n end";
    for (body, want) in [
        (
            "return tostring(setmetatable({}, {__tostring = function() return 'v' .. slow() end}))",
            json!("v12500002500000"),
        ),
        ("print(setmetatable({}, {__tostring = function() return tostring(slow()) end})) return 1", json!(1)),
        (
            "return string.format('<%s>', setmetatable({}, {__tostring = function() return tostring(slow()) end}))",
            json!("<12500002500000>"),
        ),
        (
            "local t = setmetatable({}, {__index = function(_, i) if i <= 2 then return slow() end end}) \
          local s = 0 for _, v in ipairs(t) do s = s + v end return s",
            json!(25000005000000i64),
        ),
        (
            "local mt = {__lt = function(a, b) slow() return a.k < b.k end} \
          local t = {setmetatable({k = 2}, mt), setmetatable({k = 1}, mt)} table.sort(t) return t[1].k",
            json!(1),
        ),
    ] {
        let (o, slices) =
            run_with(&format!("{slow} function main() {body} end"), json!({}), budget(65536, 60_000, 1 << 40));
        assert_eq!(o.result, Ok(want), "{body}");
        assert!(slices > 5, "{body}: {slices} slices");
    }
}

#[test]
fn publish_waits_for_the_executor_and_returns_offset_and_partition() {
    let o = run(
        r#"function main()
             local off, part = publish("t", {n = 7}, "abc")
             local ok, err = pcall(publish, "missing", 1)
             return {off, part, ok, err}
           end"#,
        json!({}),
    );
    assert_eq!(o.result.unwrap(), json!([7, 3, false, "publish: no topic named 'missing'"]));
    for (src, message) in [
        ("publish(1, 2)", "publish: the topic name must be a string"),
        ("publish('t', 2, {})", "publish: the key must be a string"),
        ("publish('t', function() end)", "publish: the payload"),
    ] {
        let o = run(&format!("function main() {src} end"), json!({}));
        let e = o.result.expect_err(src).to_string();
        assert!(e.contains(message), "{src}: {e}");
    }
}

#[test]
fn ack_and_retry_are_handed_to_the_executor_in_call_order() {
    let b = budget(DEFAULT.0, DEFAULT.1, DEFAULT.2);
    let verdicts = |src: &str, args: serde_json::Value| {
        let compiled = compile("t", src, b).unwrap();
        let mut run = Instance::from_bytecode("t", &compiled.bytecode, b.max_string).unwrap().start(args, b);
        loop {
            if let Step::Done(o) = run.step(Duration::from_millis(50)) {
                return (o, run.take_verdicts());
            }
        }
    };
    let (o, said) = verdicts(
        r#"function main(b)
             ack(b.messages[1])
             retry(b.messages[2])
             retry(b.messages[3], {delay = 1.5})
             return #b.messages
           end"#,
        json!({"messages": [{"partition": 0, "offset": 4}, {"partition": 1, "offset": 9}, {"partition": 2, "offset": 10}]}),
    );
    assert_eq!(o.result.unwrap(), json!(3));
    let got: Vec<_> = said.iter().map(|v| (v.partition, v.offset, v.retry)).collect();
    assert_eq!(got, vec![(0, 4, None), (1, 9, Some(None)), (2, 10, Some(Some(1500)))]);
    // A plain run says nothing; what a failed run said is kept.
    assert!(verdicts("function main() return 1 end", json!({})).1.is_empty());
    let (o, said) = verdicts("function main() ack({partition = 0, offset = 1}) error('late') end", json!({}));
    assert!(o.result.is_err());
    assert_eq!(said.len(), 1);
    for (src, message) in [
        ("ack(nil)", "bad argument #1 to 'ack' (a message of the batch"),
        ("ack({offset = 1})", "bad argument #1 to 'ack' (a message of the batch"),
        ("ack({offset = 1, partition = 1.5})", "bad argument #1 to 'ack' (a message of the batch"),
        ("retry({offset = 1, partition = 0}, {delay = 0/0})", "delay must be a number of seconds"),
        ("retry({offset = 1, partition = 0}, {delay = '5'})", "delay must be a number of seconds"),
        ("retry({offset = 1, partition = 0}, {delay = -1})", "delay must be a number of seconds"),
        ("retry({offset = 1, partition = 0}, 5)", "bad argument #2 to 'retry' (table expected)"),
        (
            "for i = 1, 10001 do ack({offset = i, partition = 0}) end",
            "more than 10000 ack() and retry() calls in one invocation",
        ),
    ] {
        let o = run(&format!("function main() {src} end"), json!({}));
        let e = o.result.expect_err(src).to_string();
        assert!(e.contains(message), "{src}: {e}");
    }
}
