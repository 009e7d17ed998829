//! Differential tests: random subjects and patterns are run through this
//! crate and through real Lua 5.4 (`string.find`, `string.match`,
//! `string.gmatch`, `string.gsub` via mlua), and the serialized results,
//! including error messages, must be identical.

use mlua::Lua;
use sl_lpattern::{
    expand_replacement, find, find_plain, gsub, gsub_str, has_specials, init_offset, Budget, Capture, Error, GMatch,
    Match,
};

/// Lua side: every test function returns one string describing all the
/// results (or the error) of the call, in the same format that the Rust
/// side produces.
const LUA_HELPERS: &str = r#"
local function ser(...)
  local t = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    local ty = type(v)
    if ty == "string" then t[#t + 1] = "s" .. #v .. ":" .. v
    elseif math.type(v) == "integer" then t[#t + 1] = "n" .. v
    elseif v == nil then t[#t + 1] = "nil"
    else t[#t + 1] = ty .. ":" .. tostring(v) end
  end
  return table.concat(t, ",")
end

local function prot(f, ...)
  local r = table.pack(pcall(f, ...))
  if not r[1] then return "E:" .. tostring(r[2]) end
  return ser(table.unpack(r, 2, r.n))
end

function t_find(s, p, init) return prot(string.find, s, p, init) end
function t_match(s, p, init) return prot(string.match, s, p, init) end

function t_gmatch(s, p, init)
  local out = {}
  local it = string.gmatch(s, p, init)
  local errors = 0
  for _ = 1, 100 do
    -- Called through pcall (a C function) so that Lua adds no
    -- "chunk:line:" prefix to error messages. Errors are caught and the
    -- iteration goes on, to check the state after an error too (for a
    -- few errors only: Lua leaks its depth counter on each error in a
    -- gmatch iterator, a known difference).
    local r = table.pack(pcall(it))
    if not r[1] then
      out[#out + 1] = "E:" .. tostring(r[2])
      errors = errors + 1
      if errors == 3 then break end
    elseif r[2] == nil then
      break
    else
      out[#out + 1] = "{" .. ser(table.unpack(r, 2, r.n)) .. "}"
    end
  end
  return table.concat(out, ";")
end

function t_gsub_s(s, p, r, n) return prot(string.gsub, s, p, r, n) end

function t_gsub_f(s, p, n)
  return prot(string.gsub, s, p, function(...)
    if (...) == "a" then return nil end
    return "<" .. ser(...) .. ">"
  end, n)
end

function t_gsub_t(s, p)
  local t = setmetatable({}, { __index = function(_, k)
    if k == "b" then return false end
    return "[" .. ser(k) .. "]"
  end })
  return prot(string.gsub, s, p, t)
end
"#;

fn ser_caps(subject: &[u8], caps: &[Capture], out: &mut Vec<u8>) {
    for (i, c) in caps.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        ser_cap(subject, c, out);
    }
}

fn ser_cap(subject: &[u8], c: &Capture, out: &mut Vec<u8>) {
    match c {
        Capture::Bytes(r) => {
            out.extend_from_slice(format!("s{}:", r.len()).as_bytes());
            out.extend_from_slice(&subject[r.clone()]);
        }
        Capture::Position(p) => out.extend_from_slice(format!("n{p}").as_bytes()),
        Capture::Unfinished(_) => panic!("unfinished capture escaped"),
    }
}

fn err_str(e: Error) -> Vec<u8> {
    match e {
        Error::Pattern(msg) => format!("E:{msg}").into_bytes(),
        Error::BudgetExhausted => panic!("budget exhausted in differential test"),
    }
}

fn rust_find(s: &[u8], p: &[u8], init: i64, is_find: bool) -> Vec<u8> {
    let init = init_offset(init, s.len());
    if init > s.len() {
        return b"nil".to_vec();
    }
    if is_find && !has_specials(p) {
        return match find_plain(s, p, init) {
            Some(i) => format!("n{},n{}", i + 1, i + p.len()).into_bytes(),
            None => b"nil".to_vec(),
        };
    }
    match find(s, p, init, &mut Budget::unlimited()) {
        Err(e) => err_str(e),
        Ok(None) => b"nil".to_vec(),
        Ok(Some(m)) => {
            let mut out = Vec::new();
            if is_find {
                out.extend_from_slice(format!("n{},n{}", m.start + 1, m.end).as_bytes());
                if !m.captures.is_empty() {
                    out.push(b',');
                    ser_caps(s, &m.captures, &mut out);
                }
            } else {
                match m.values() {
                    Ok(vals) => ser_caps(s, &vals, &mut out),
                    Err(e) => return err_str(e),
                }
            }
            out
        }
    }
}

fn rust_gmatch(s: &[u8], p: &[u8], init: i64) -> Vec<u8> {
    let mut g = GMatch::new(s, p, init_offset(init, s.len()));
    let mut budget = Budget::unlimited();
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut errors = 0;
    for _ in 0..100 {
        match g.next(&mut budget) {
            Ok(Some(m)) => {
                let mut out = b"{".to_vec();
                ser_caps(s, &m.values().unwrap(), &mut out);
                out.push(b'}');
                parts.push(out);
            }
            Ok(None) => break,
            Err(e) => {
                parts.push(err_str(e));
                errors += 1;
                if errors == 3 {
                    break;
                }
            }
        }
    }
    parts.join(&b';')
}

/// Lua's optional gsub count: `None` is nil.
fn max_n(n: Option<i64>) -> Option<usize> {
    n.map(|n| usize::try_from(n).unwrap_or(0))
}

fn with_count(r: Result<(Vec<u8>, usize), Error>) -> Vec<u8> {
    match r {
        Err(e) => err_str(e),
        Ok((mut out, n)) => {
            let mut res = format!("s{}:", out.len()).into_bytes();
            res.append(&mut out);
            res.extend_from_slice(format!(",n{n}").as_bytes());
            res
        }
    }
}

fn rust_gsub_s(s: &[u8], p: &[u8], r: &[u8], n: Option<i64>) -> Vec<u8> {
    with_count(gsub_str(s, p, r, max_n(n), &mut Budget::unlimited()))
}

fn unwrap_gsub(r: Result<(Vec<u8>, usize), sl_lpattern::GsubError<Error>>) -> Vec<u8> {
    with_count(r.map_err(|e| match e {
        sl_lpattern::GsubError::Match(e) | sl_lpattern::GsubError::Replacement(e) => e,
    }))
}

fn rust_gsub_f(s: &[u8], p: &[u8], n: Option<i64>) -> Vec<u8> {
    unwrap_gsub(gsub(s, p, max_n(n), &mut Budget::unlimited(), |m: &Match| {
        let vals = m.values()?;
        if matches!(&vals[0], Capture::Bytes(r) if &s[r.clone()] == b"a") {
            return Ok(None);
        }
        let mut out = b"<".to_vec();
        ser_caps(s, &vals, &mut out);
        out.push(b'>');
        Ok(Some(out))
    }))
}

fn rust_gsub_t(s: &[u8], p: &[u8]) -> Vec<u8> {
    unwrap_gsub(gsub(s, p, None, &mut Budget::unlimited(), |m: &Match| {
        let key = m.capture(0)?;
        if matches!(&key, Capture::Bytes(r) if &s[r.clone()] == b"b") {
            return Ok(None);
        }
        let mut out = b"[".to_vec();
        ser_cap(s, &key, &mut out);
        out.push(b']');
        Ok(Some(out))
    }))
}

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const SUBJECT_BYTES: &[u8] = b"aaabbbcx019  _.-()[]%^$\t\n\x0b\x00\xe1\xff";
const LITERALS: &[u8] = b"aabbcx019 _";
const ESCAPES: &[u8] = b".-()[]%^$*+?";
const CLASSES: &[u8] = b"acdglpsuwxzACDGLPSUWXZ";

fn gen_subject(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(14);
    (0..len).map(|_| rng.pick(SUBJECT_BYTES)).collect()
}

fn gen_set(rng: &mut Rng, out: &mut Vec<u8>) {
    out.push(b'[');
    if rng.chance(30) {
        out.push(b'^');
    }
    if rng.chance(10) {
        out.push(b']');
    }
    for _ in 0..1 + rng.below(3) {
        match rng.below(5) {
            0 | 1 => out.push(rng.pick(LITERALS)),
            2 => {
                out.push(rng.pick(b"a0b "));
                out.push(b'-');
                out.push(rng.pick(b"c9a)"));
            }
            3 => {
                out.push(b'%');
                out.push(rng.pick(CLASSES));
            }
            _ => {
                out.push(b'%');
                out.push(rng.pick(ESCAPES));
            }
        }
    }
    if rng.chance(10) {
        out.push(b'-');
    }
    out.push(b']');
}

fn gen_single(rng: &mut Rng, out: &mut Vec<u8>) {
    match rng.below(10) {
        0..=3 => out.push(rng.pick(LITERALS)),
        4 => out.push(b'.'),
        5 | 6 => {
            out.push(b'%');
            out.push(rng.pick(CLASSES));
        }
        7 => {
            out.push(b'%');
            out.push(rng.pick(ESCAPES));
        }
        _ => gen_set(rng, out),
    }
}

/// A pattern from a grammar of valid pieces; `closed` counts the captures
/// closed so far (for back-references).
fn gen_items(rng: &mut Rng, out: &mut Vec<u8>, depth: usize, closed: &mut usize) {
    for _ in 0..rng.below(5) {
        match rng.below(20) {
            0..=10 => {
                gen_single(rng, out);
                if rng.chance(50) {
                    out.push(rng.pick(b"*+-?"));
                }
            }
            11 | 12 if depth < 3 => {
                out.push(b'(');
                gen_items(rng, out, depth + 1, closed);
                out.push(b')');
                *closed += 1;
            }
            13 => out.extend_from_slice(b"()"),
            14 => {
                out.extend_from_slice(b"%b");
                out.push(rng.pick(b"()ab"));
                out.push(rng.pick(b")(ba"));
            }
            15 => {
                out.extend_from_slice(b"%f");
                gen_set(rng, out);
            }
            16 if *closed > 0 => {
                out.push(b'%');
                out.push(b'1' + rng.below(*closed) as u8);
            }
            _ => gen_single(rng, out),
        }
    }
}

fn gen_pattern(rng: &mut Rng) -> Vec<u8> {
    let mut p = Vec::new();
    if rng.chance(8) {
        // Pure noise from pattern-ish bytes.
        for _ in 0..rng.below(10) {
            p.push(rng.pick(b"ab.%()[]^$*+-?1fb0"));
        }
        return p;
    }
    if rng.chance(20) {
        p.push(b'^');
    }
    let mut closed = 0;
    gen_items(rng, &mut p, 0, &mut closed);
    if rng.chance(20) {
        p.push(b'$');
    }
    if rng.chance(12) {
        // Break it: truncate, or insert a stray special byte.
        if !p.is_empty() && rng.chance(50) {
            p.truncate(rng.below(p.len()));
        } else {
            let at = rng.below(p.len() + 1);
            p.insert(at, rng.pick(b"%[]()^$"));
        }
    }
    p
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

struct Lua54 {
    lua: Lua,
}

impl Lua54 {
    fn new() -> Self {
        let lua = Lua::new();
        lua.load(LUA_HELPERS).exec().unwrap();
        Lua54 { lua }
    }

    fn call<A: mlua::IntoLuaMulti>(&self, name: &str, args: A) -> Vec<u8> {
        let f: mlua::Function = self.lua.globals().get(name).unwrap();
        let r: mlua::String = f.call(args).unwrap();
        r.as_bytes().to_vec()
    }

    fn s(&self, b: &[u8]) -> mlua::String {
        self.lua.create_string(b).unwrap()
    }
}

fn check(what: &str, s: &[u8], p: &[u8], extra: &str, lua: Vec<u8>, rust: Vec<u8>) -> bool {
    if lua != rust {
        eprintln!(
            "MISMATCH {what}: subject=\"{}\" pattern=\"{}\" {extra}\n  lua:  {}\n  rust: {}",
            show(s),
            show(p),
            show(&lua),
            show(&rust)
        );
        false
    } else {
        true
    }
}

#[test]
fn random_patterns_agree_with_lua() {
    let lua = Lua54::new();
    // LPATTERN_DIFF_CASES / LPATTERN_DIFF_SEED allow longer exploratory
    // runs; the default is a fixed, quick set.
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let cases = env("LPATTERN_DIFF_CASES", 4000) as usize;
    let mut rng = Rng(env("LPATTERN_DIFF_SEED", 0x5EED_1234_ABCD_0001) | 1);
    let mut failures = 0;
    let mut errors_seen = 0;
    let mut matches_seen = 0;
    for _ in 0..cases {
        let s = gen_subject(&mut rng);
        let p = gen_pattern(&mut rng);
        let init: i64 = match rng.below(10) {
            0 => 2,
            1 => 0,
            2 => -1,
            3 => -3,
            4 => s.len() as i64 + 1,
            5 => s.len() as i64 + 2,
            _ => 1,
        };
        let (ls, lp) = (lua.s(&s), lua.s(&p));
        let ctx = format!("init={init}");

        let l = lua.call("t_find", (ls.clone(), lp.clone(), init));
        let r = rust_find(&s, &p, init, true);
        if l.starts_with(b"E:") {
            errors_seen += 1;
        } else if l != b"nil" {
            matches_seen += 1;
        }
        failures += usize::from(!check("find", &s, &p, &ctx, l, r));

        let l = lua.call("t_match", (ls.clone(), lp.clone(), init));
        let r = rust_find(&s, &p, init, false);
        failures += usize::from(!check("match", &s, &p, &ctx, l, r));

        let l = lua.call("t_gmatch", (ls.clone(), lp.clone(), init));
        let r = rust_gmatch(&s, &p, init);
        failures += usize::from(!check("gmatch", &s, &p, &ctx, l, r));

        let repl = rng.pick(&[&b"%0"[..], b"%1", b"<%1|%0>", b"%%", b"x", b"", b"%2", b"[%1%2]", b"%", b"%a", b"%3%1"]);
        let n = rng.pick(&[None, None, Some(0), Some(1), Some(2), Some(-1)]);
        let ctx = format!("repl=\"{}\" n={n:?}", show(repl));
        let l = lua.call("t_gsub_s", (ls.clone(), lp.clone(), lua.s(repl), n));
        let r = rust_gsub_s(&s, &p, repl, n);
        failures += usize::from(!check("gsub(string)", &s, &p, &ctx, l, r));

        let l = lua.call("t_gsub_f", (ls.clone(), lp.clone(), n));
        let r = rust_gsub_f(&s, &p, n);
        failures += usize::from(!check("gsub(function)", &s, &p, &ctx, l, r));

        let l = lua.call("t_gsub_t", (ls, lp));
        let r = rust_gsub_t(&s, &p);
        failures += usize::from(!check("gsub(table)", &s, &p, "", l, r));

        assert!(failures < 20, "too many mismatches");
    }
    eprintln!("{cases} cases: {matches_seen} find matches, {errors_seen} find errors");
    assert_eq!(failures, 0);
    // The generator must exercise both successes and errors.
    assert!(matches_seen > cases / 4, "{matches_seen}");
    assert!(errors_seen > cases / 50, "{errors_seen}");
}

#[test]
fn depth_and_capture_limits_agree_with_lua() {
    let lua = Lua54::new();
    let subject = vec![b'a'; 300];
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    for k in [1, 100, 197, 198, 199, 200, 201, 250] {
        patterns.push(b"a?".repeat(k));
        patterns.push(b"(".repeat(k).into_iter().chain(b")".repeat(k)).collect());
        patterns.push(b"()".repeat(k.min(40)));
        patterns.push(b"a-".repeat(k).into_iter().chain(*b"$").collect());
        patterns.push(b"(a)".repeat(k.min(40)));
        patterns.push(b"a*".repeat(k));
        patterns.push(b"%f[a]a*".repeat(k));
    }
    patterns.push(b"((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))".to_vec());
    patterns.push(b"(((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))".to_vec());
    let mut failures = 0;
    for p in &patterns {
        for s in [&subject[..], &subject[..10], b"b"] {
            let l = lua.call("t_match", (lua.s(s), lua.s(p), 1));
            let r = rust_find(s, p, 1, false);
            failures += usize::from(!check("match", s, p, "", l, r));
            let l = lua.call("t_gsub_s", (lua.s(s), lua.s(p), lua.s(b"%0"), None::<i64>));
            let r = rust_gsub_s(s, p, b"%0", None);
            failures += usize::from(!check("gsub", s, p, "", l, r));
        }
    }
    assert_eq!(failures, 0);
}

#[test]
fn all_bytes_and_classes_agree_with_lua() {
    let lua = Lua54::new();
    let subject: Vec<u8> = (0..=255u8).collect();
    let mut failures = 0;
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    for cl in 0..=255u8 {
        patterns.push(vec![b'%', cl]);
        patterns.push(vec![b'[', b'%', cl, b']']);
        patterns.push(vec![b'[', b'^', b'%', cl, b']']);
        patterns.push(vec![b'%', b'f', b'[', b'%', cl, b']']);
    }
    patterns.push(b"[\x80-\xff]".to_vec());
    patterns.push(b"[\xff-\x80]".to_vec());
    patterns.push(b"[%z-a]".to_vec());
    patterns.push(b"[\x00-\x10]".to_vec());
    for p in &patterns {
        let l = lua.call("t_gsub_s", (lua.s(&subject), lua.s(p), lua.s(b"<%0>"), None::<i64>));
        let r = rust_gsub_s(&subject, p, b"<%0>", None);
        failures += usize::from(!check("gsub", &subject, p, "", l, r));
    }
    assert_eq!(failures, 0);
}

#[test]
fn expand_replacement_positions() {
    let m = find(b"hello", b"()ll()", 0, &mut Budget::unlimited()).unwrap().unwrap();
    let mut out = Vec::new();
    expand_replacement(b"%1-%2:%0%%", b"hello", &m, &mut out).unwrap();
    assert_eq!(out, b"3-5:ll%");
}
