//! Unit tests: Lua 5.4 pattern semantics (cases in the spirit of the Lua
//! test suite's `pm.lua`, written for this crate) and budget behaviour.

use super::*;

type Vals = Vec<String>;

fn show(subject: &[u8], c: &Capture) -> String {
    match c {
        Capture::Bytes(r) => String::from_utf8_lossy(&subject[r.clone()]).into_owned(),
        Capture::Position(p) => p.to_string(),
        Capture::Unfinished(_) => panic!("unfinished capture leaked"),
    }
}

fn perr(msg: &str) -> Error {
    Error::Pattern(msg.to_owned())
}

/// `string.find(s, p, init)` including Lua's plain-search shortcut:
/// (1-based start, end, captures).
fn lfind_at(s: &str, p: &str, init: i64) -> Result<Option<(usize, usize, Vals)>, Error> {
    let (s, p) = (s.as_bytes(), p.as_bytes());
    let init = init_offset(init, s.len());
    if init > s.len() {
        return Ok(None);
    }
    if !has_specials(p) {
        return Ok(find_plain(s, p, init).map(|i| (i + 1, i + p.len(), vec![])));
    }
    Ok(find(s, p, init, &mut Budget::unlimited())?.map(|m| {
        let caps = m.captures.iter().map(|c| show(s, c)).collect();
        (m.start + 1, m.end, caps)
    }))
}

fn lfind(s: &str, p: &str) -> Option<(usize, usize)> {
    lfind_at(s, p, 1).unwrap().map(|(a, b, _)| (a, b))
}

/// `string.match(s, p)`.
fn lmatch_r(s: &str, p: &str) -> Result<Option<Vals>, Error> {
    let s = s.as_bytes();
    match find(s, p.as_bytes(), 0, &mut Budget::unlimited())? {
        None => Ok(None),
        Some(m) => Ok(Some(m.values()?.iter().map(|c| show(s, c)).collect())),
    }
}

fn lmatch(s: &str, p: &str) -> Option<Vals> {
    lmatch_r(s, p).unwrap()
}

/// `string.match(s, p)` for patterns with at most one value.
fn m1(s: &str, p: &str) -> Option<String> {
    lmatch(s, p).map(|mut v| {
        assert_eq!(v.len(), 1);
        v.remove(0)
    })
}

fn lgsub_n(s: &str, p: &str, r: &str, n: Option<usize>) -> Result<(String, usize), Error> {
    let (out, n) = gsub_str(s.as_bytes(), p.as_bytes(), r.as_bytes(), n, &mut Budget::unlimited())?;
    Ok((String::from_utf8(out).unwrap(), n))
}

fn lgsub(s: &str, p: &str, r: &str) -> String {
    lgsub_n(s, p, r, None).unwrap().0
}

fn lgmatch(s: &str, p: &str) -> Result<Vec<Vals>, Error> {
    let mut g = GMatch::new(s.as_bytes(), p.as_bytes(), 0);
    let mut all = Vec::new();
    let mut budget = Budget::unlimited();
    while let Some(m) = g.next(&mut budget)? {
        all.push(m.values()?.iter().map(|c| show(s.as_bytes(), c)).collect());
    }
    Ok(all)
}

fn v(items: &[&str]) -> Vals {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn plain_and_simple_find() {
    assert_eq!(lfind("", ""), Some((1, 0)));
    assert_eq!(lfind("alo", ""), Some((1, 0)));
    assert_eq!(lfind("a\0o a\0o a\0o", "a"), Some((1, 1)));
    assert_eq!(lfind_at("a\0o a\0o a\0o", "a\0o", 2).unwrap().unwrap().0, 5);
    assert_eq!(lfind_at("a\0o a\0o a\0o", "a\0o", 9).unwrap().unwrap().0, 9);
    assert_eq!(lfind_at("a\0a\0a\0a\0\0ab", "\0ab", 2).unwrap().unwrap().0, 9);
    assert_eq!(lfind("a\0a\0a\0a\0\0ab", "b"), Some((11, 11)));
    assert_eq!(lfind("a\0a\0a\0a\0\0ab", "b\0"), None);
    assert_eq!(lfind("", "\0"), None);
    assert_eq!(lfind("alo123alo", "12"), Some((4, 5)));
    assert_eq!(lfind("alo123alo", "^12"), None);
    assert_eq!(lfind_at("alo", "", 4).unwrap(), Some((4, 3, vec![])));
    assert_eq!(lfind_at("alo", "", 5).unwrap(), None);
    assert_eq!(lfind_at("alo", "^", 4).unwrap(), Some((4, 3, vec![])));
    assert_eq!(lfind_at("alo", "^", 5).unwrap(), None);
    assert_eq!(lfind_at("alo", "o", -1).unwrap(), Some((3, 3, vec![])));
    assert_eq!(lfind_at("alo", "l.", -10).unwrap(), Some((2, 3, vec![])));
    assert_eq!(lfind_at("alo alo", "%a+", -3).unwrap(), Some((5, 7, vec![])));
    // `)` is not special for the plain-search check.
    assert_eq!(lfind("a)", ")"), Some((2, 2)));
    assert_eq!(lmatch_r("a)", ")"), Err(perr("invalid pattern capture")));
}

#[test]
fn init_offsets() {
    assert_eq!(init_offset(1, 3), 0);
    assert_eq!(init_offset(0, 3), 0);
    assert_eq!(init_offset(-1, 3), 2);
    assert_eq!(init_offset(-3, 3), 0);
    assert_eq!(init_offset(-4, 3), 0);
    assert_eq!(init_offset(i64::MIN, 3), 0);
    assert_eq!(init_offset(4, 3), 3);
    assert_eq!(init_offset(10, 3), 9);
    assert_eq!(init_offset(-1, 0), 0);
}

#[test]
fn quantifiers() {
    assert_eq!(m1("aaab", ".*b").as_deref(), Some("aaab"));
    assert_eq!(m1("aaa", ".*a").as_deref(), Some("aaa"));
    assert_eq!(m1("b", ".*b").as_deref(), Some("b"));
    assert_eq!(m1("aaab", ".+b").as_deref(), Some("aaab"));
    assert_eq!(m1("aaa", ".+a").as_deref(), Some("aaa"));
    assert_eq!(m1("b", ".+b"), None);
    assert_eq!(m1("aaab", ".?b").as_deref(), Some("ab"));
    assert_eq!(m1("aaa", ".?a").as_deref(), Some("aa"));
    assert_eq!(m1("b", ".?b").as_deref(), Some("b"));
    assert_eq!(m1("aloALO", "%l*").as_deref(), Some("alo"));
    assert_eq!(m1("aLo_ALO", "%a*").as_deref(), Some("aLo"));
    assert_eq!(m1("  \n\r*&\n\r   xuxu  \n\n", "%g%g%g+").as_deref(), Some("xuxu"));
    assert_eq!(m1("aaab", "a*").as_deref(), Some("aaa"));
    assert_eq!(m1("aaa", "^.*$").as_deref(), Some("aaa"));
    assert_eq!(m1("aaa", "b*").as_deref(), Some(""));
    assert_eq!(m1("aaa", "ab*a").as_deref(), Some("aa"));
    assert_eq!(m1("aba", "ab*a").as_deref(), Some("aba"));
    assert_eq!(m1("aaab", "a+").as_deref(), Some("aaa"));
    assert_eq!(m1("aaa", "^.+$").as_deref(), Some("aaa"));
    assert_eq!(m1("aaa", "b+"), None);
    assert_eq!(m1("aaa", "ab+a"), None);
    assert_eq!(m1("aba", "ab+a").as_deref(), Some("aba"));
    assert_eq!(m1("", "b*").as_deref(), Some(""));
    assert_eq!(m1("aaa", "bb*"), None);
    assert_eq!(m1("aaab", "a-").as_deref(), Some(""));
    assert_eq!(m1("aaa", "^.-$").as_deref(), Some("aaa"));
    assert_eq!(m1("aabaaabaaabaaaba", "b.*b").as_deref(), Some("baaabaaabaaab"));
    assert_eq!(m1("aabaaabaaabaaaba", "b.-b").as_deref(), Some("baaab"));
    assert_eq!(m1("alo xo", ".o$").as_deref(), Some("xo"));
    assert_eq!(m1(" \n isto e assim", "%S%S*").as_deref(), Some("isto"));
    assert_eq!(m1(" \n isto e assim", "%S*$").as_deref(), Some("assim"));
    assert_eq!(m1(" \n isto e assim", "[a-z]*$").as_deref(), Some("assim"));
    assert_eq!(m1("um caracter ? extra", "[^%sa-z]").as_deref(), Some("?"));
    assert_eq!(m1("", "a?").as_deref(), Some(""));
    assert_eq!(m1("\u{e1}", "\u{e1}?").as_deref(), Some("\u{e1}"));
    assert_eq!(m1("\u{e1}bl", "\u{e1}?b?l?").as_deref(), Some("\u{e1}bl"));
    assert_eq!(m1("  xbl", "x?b?l?").as_deref(), Some(""));
    // Bytes, not characters: only the last byte of "\u{e1}" is optional.
    assert_eq!(m1("  \u{e1}bl", "\u{e1}?b?l?").as_deref(), Some("\u{e1}bl"));
    assert_eq!(m1("aa", "^aa?a?a").as_deref(), Some("aa"));
    assert_eq!(m1("]]]xb", "[^]]").as_deref(), Some("x"));
    assert_eq!(m1("0alo alo", "%x*").as_deref(), Some("0a"));
    assert_eq!(m1("alo alo", "%C+").as_deref(), Some("alo alo"));
}

#[test]
fn anchors_and_dollar() {
    assert_eq!(m1("a$a", ".$").as_deref(), Some("a"));
    assert_eq!(m1("a$a", ".%$").as_deref(), Some("a$"));
    assert_eq!(m1("a$a", ".$.").as_deref(), Some("a$a"));
    assert_eq!(m1("a$a", "$$"), None);
    assert_eq!(m1("a$b", "a$"), None);
    assert_eq!(m1("a$a", "$").as_deref(), Some(""));
    assert_eq!(m1("a$$$", "$*$").as_deref(), Some("$$$"));
    assert_eq!(m1("a^b", "a^b").as_deref(), Some("a^b"));
    assert_eq!(m1("^b", "^^b").as_deref(), Some("^b"));
    assert_eq!(m1("x^b", "^^b"), None);
}

#[test]
fn captures() {
    assert_eq!(lmatch("alo xyzK", "(%w+)K"), Some(v(&["xyz"])));
    assert_eq!(lmatch("254 K", "(%d*)K"), Some(v(&[""])));
    assert_eq!(lmatch("alo ", "(%w*)$"), Some(v(&[""])));
    assert_eq!(lmatch("alo ", "(%w+)$"), None);
    assert_eq!(lfind("(alo)", "%(a"), Some((1, 2)));
    assert_eq!(lmatch("xlo alo", "^(((.).).* (%w*))$"), Some(v(&["xlo alo", "xl", "x", "alo"])));
    assert_eq!(lmatch("0123456789", "(.+(.?)())"), Some(v(&["0123456789", "", "11"])));
    assert_eq!(lfind_at("hello world", "(o)()", 1).unwrap(), Some((5, 5, v(&["o", "6"]))));
    assert_eq!(lmatch("abc", "()"), Some(v(&["1"])));
    assert_eq!(lmatch("abc", "()$"), Some(v(&["4"])));
    // Back-references.
    assert_eq!(lmatch("x = 'a\"b' y", "([\"'])(.-)%1"), Some(v(&["'", "a\"b"])));
    assert_eq!(lmatch("abcabc", "^(.-)%1$"), Some(v(&["abc"])));
    assert_eq!(lmatch("abcab", "^(.-)%1$"), None);
    // A back-reference to a position capture never matches.
    assert_eq!(lmatch("aa", "()%1"), None);
    // find returns no captures when there are none.
    assert_eq!(lfind_at("abc", "b+", 1).unwrap(), Some((2, 2, vec![])));
}

#[test]
fn sets() {
    assert_eq!(m1("a-]", "[]-]+").as_deref(), Some("-]"));
    assert_eq!(m1("x-z", "[a-]+").as_deref(), Some("-"));
    assert_eq!(m1("ab-c", "[%a-]+").as_deref(), Some("ab-c"));
    assert_eq!(m1("a%]b", "[%]]").as_deref(), Some("]"));
    assert_eq!(m1("a%]b", "[%%]").as_deref(), Some("%"));
    assert_eq!(m1("a^b", "[b^]+").as_deref(), Some("^b"));
    assert_eq!(m1("zyx", "[z-a]"), None);
    assert_eq!(m1("0x1F", "[%x]+").as_deref(), Some("0"));
    assert_eq!(m1("xx\u{7f}", "[%c]").as_deref(), Some("\u{7f}"));
    assert_eq!(m1("\u{b}x", "%s").as_deref(), Some("\u{b}"));
    assert_eq!(m1("\0", "%z").as_deref(), Some("\0"));
    assert_eq!(m1("\0a", "%Z").as_deref(), Some("a"));
    assert_eq!(m1("ab", "[^]a]").as_deref(), Some("b"));
    // `]` right after `[^` is literal, and `%` escapes inside a set.
    assert_eq!(m1("]]x", "[^]]").as_deref(), Some("x"));
    assert_eq!(m1("a.b", "[.]").as_deref(), Some("."));
}

#[test]
fn balance_and_frontier() {
    assert_eq!(lgsub("alo 'oi' alo", "%b''", "\""), "alo \" alo");
    assert_eq!(m1("alo (x(y)z) b", "%b()").as_deref(), Some("(x(y)z)"));
    assert_eq!(m1("alo (x(y)z b", "%b()").as_deref(), Some("(y)"));
    assert_eq!(m1("((x)", "^%b()"), None);
    assert_eq!(lgsub("aaa aa a aaa a", "%f[%w]%a", "x"), "xaa xa x xaa x");
    assert_eq!(lgsub("[[]] [][] [[[[", "%f[[].", "x"), "x[]] x]x] x[[[");
    assert_eq!(lgsub("01abc45de3", "%f[%d]", "."), ".01abc.45de.3");
    assert_eq!(lgsub("01abc45 de3x", "%f[%D]%w", "."), "01.bc45 de3.");
    assert_eq!(lgsub("function", "%f[\u{1}-\u{7f}]%w", "."), ".unction");
    assert_eq!(lgsub("function", "%f[^\u{1}-\u{7f}]", "."), "function.");
    assert_eq!(lfind("a", "%f[a]"), Some((1, 0)));
    assert_eq!(lfind("a", "%f[^%z]"), Some((1, 0)));
    assert_eq!(lfind("a", "%f[^%l]"), Some((2, 1)));
    assert_eq!(lfind("aba", "%f[a%z]"), Some((3, 2)));
    assert_eq!(lfind("aba", "%f[%z]"), Some((4, 3)));
    assert_eq!(lfind("aba", "%f[%l%z]"), None);
    assert_eq!(lfind("aba", "%f[^%l%z]"), None);
    assert_eq!(lfind(" alo aalo allo", "%f[%S].-%f[%s].-%f[%S]"), Some((2, 5)));
    assert_eq!(m1(" alo aalo allo", "%f[%S](.-%f[%s].-%f[%S])").as_deref(), Some("alo "));
    // The frontier looks at the real previous byte, even past `init`.
    assert_eq!(lfind_at("aab", "%f[%a]", 2).unwrap(), None);
}

#[test]
fn gsub_cases() {
    assert_eq!(lgsub("ulo ulo", "u", "x"), "xlo xlo");
    assert_eq!(lgsub("alo ulo  ", " +$", ""), "alo ulo");
    assert_eq!(lgsub("  alo alo  ", "^%s*(.-)%s*$", "%1"), "alo alo");
    assert_eq!(lgsub("alo  alo  \n 123\n ", "%s+", " "), "alo alo 123 ");
    assert_eq!(lgsub("abc", "%w", "%1%0"), "aabbcc");
    assert_eq!(lgsub("abc", "%w+", "%0%1"), "abcabc");
    assert_eq!(lgsub("abc", "%w", "%%%0"), "%a%b%c");
    assert_eq!(lgsub("\u{e1}", "$", "\0x"), "\u{e1}\0x");
    assert_eq!(lgsub("", "^", "r"), "r");
    assert_eq!(lgsub("", "$", "r"), "r");
    assert_eq!(lgsub_n("hello world", "%w+", "%0 %0", Some(1)).unwrap(), ("hello hello world".to_owned(), 1));
    assert_eq!(lgsub("hello world", "(%w+) (%w+)", "%2 %1"), "world hello");
    assert_eq!(lgsub_n("abc", "", "-", None).unwrap(), ("-a-b-c-".to_owned(), 4));
    assert_eq!(lgsub_n("abc", "%w*", "-", None).unwrap(), ("-".to_owned(), 1));
    assert_eq!(lgsub("a b cd", " *", "-"), "-a-b-c-d-");
    assert_eq!(lgsub_n("abc", "^.", "x", None).unwrap(), ("xbc".to_owned(), 1));
    assert_eq!(lgsub_n("abc", "^x", "y", None).unwrap(), ("abc".to_owned(), 0));
    assert_eq!(lgsub_n("abc", ".", "x", Some(0)).unwrap(), ("abc".to_owned(), 0));
    assert_eq!(lgsub("abc", "()", "%1"), "1a2b3c4");
    assert_eq!(lgsub("abc", "b()", "[%1]"), "a[3]c");
    // An unfinished capture is only an error when used.
    assert_eq!(lgsub("alo", "(.", "a"), "aaa");
    assert_eq!(lgsub_n("alo", "(.", "%1", None), Err(perr("unfinished capture")));
}

#[test]
fn gsub_with_callbacks() {
    let s = b"um (dois) tres (quatro)";
    let (out, n) =
        gsub(s, b"(%(%w+%))", None, &mut Budget::unlimited(), |m| Ok::<_, ()>(Some(s[m.range()].to_ascii_uppercase())))
            .unwrap();
    assert_eq!((out.as_slice(), n), (&b"um (DOIS) tres (QUATRO)"[..], 2));

    // Returning None keeps the original text but still counts.
    let (out, n) =
        gsub(b"abc", b"%w", None, &mut Budget::unlimited(), |m| Ok::<_, ()>((m.start != 1).then(|| b"x".to_vec())))
            .unwrap();
    assert_eq!((out.as_slice(), n), (&b"xbx"[..], 3));

    // Callback errors are propagated unchanged.
    let r = gsub(b"abc", b"%w", None, &mut Budget::unlimited(), |m| if m.start == 1 { Err("boom") } else { Ok(None) });
    assert_eq!(r, Err(GsubError::Replacement("boom")));

    // The match handed to the callback may hold an unfinished capture.
    let r = gsub(b"alo", b"(.", None, &mut Budget::unlimited(), |m| m.values().map(|_| None));
    assert_eq!(r, Err(GsubError::Replacement(perr("unfinished capture"))));
    let r = gsub(b"alo", b"(.)(.", None, &mut Budget::unlimited(), |m| m.capture(0).map(|_| None));
    assert_eq!(r.unwrap().1, 1);

    // gsub_into appends and discards what a "keep" callback wrote.
    let mut out = b"pre:".to_vec();
    let n = gsub_into::<(), _>(b"a1b2", b"%d", None, &mut Budget::unlimited(), &mut out, |m, out| {
        out.extend_from_slice(b"garbage");
        Ok(m.start == 1)
    })
    .unwrap();
    assert_eq!((out.as_slice(), n), (&b"pre:agarbageb2"[..], 2));
}

#[test]
fn gmatch_cases() {
    assert_eq!(lgmatch("aaa", "a*").unwrap(), vec![v(&["aaa"])]);
    assert_eq!(lgmatch("abc", "").unwrap(), vec![v(&[""]), v(&[""]), v(&[""]), v(&[""])]);
    assert_eq!(lgmatch("first second word", "%a+").unwrap(), vec![v(&["first"]), v(&["second"]), v(&["word"])]);
    assert_eq!(lgmatch("k=v, a=b", "(%w+)=(%w+)").unwrap(), vec![v(&["k", "v"]), v(&["a", "b"])]);
    assert_eq!(
        lgmatch("13 14 10 = 11, 15= 16, 22=23", "(%d+)%s*=%s*(%d+)").unwrap(),
        vec![v(&["10", "11"]), v(&["15", "16"]), v(&["22", "23"])]
    );
    // `^` is not an anchor in gmatch.
    assert_eq!(lgmatch("a^a", "^a").unwrap(), vec![v(&["^a"])]);
    assert_eq!(lgmatch("aaa", "^a").unwrap(), Vec::<Vals>::new());
    // An empty match right where the previous match ended is skipped.
    assert_eq!(lgmatch("abc d", "%a*").unwrap(), vec![v(&["abc"]), v(&["d"])]);
    assert_eq!(lgmatch("abc  d", "%a*").unwrap(), vec![v(&["abc"]), v(&[""]), v(&["d"])]);
    assert_eq!(lgmatch("ab", "()").unwrap(), vec![v(&["1"]), v(&["2"]), v(&["3"])]);
    // init, and exhaustion is sticky.
    let mut g = GMatch::new(&b"a1b2c3"[..], &b"%d"[..], 2);
    let mut b = Budget::unlimited();
    assert_eq!(g.next(&mut b).unwrap().unwrap().start, 3);
    assert_eq!(g.next(&mut b).unwrap().unwrap().start, 5);
    assert_eq!(g.next(&mut b).unwrap(), None);
    assert_eq!(g.next(&mut b).unwrap(), None);
    let mut g = GMatch::new(b"abc".to_vec(), b"".to_vec(), 10);
    assert_eq!(g.next(&mut b).unwrap(), None);
    let mut g = GMatch::new(b"abc".to_vec(), b"".to_vec(), 3);
    assert_eq!(g.next(&mut b).unwrap().map(|m| m.start), Some(3));
    assert_eq!(g.next(&mut b).unwrap(), None);
}

#[test]
fn pattern_errors() {
    let e = |s: &str, p: &str| lmatch_r(s, p).unwrap_err();
    assert_eq!(e("a", "%"), perr("malformed pattern (ends with '%')"));
    assert_eq!(e("a", "a%"), perr("malformed pattern (ends with '%')"));
    for p in ["[a", "[]", "[^]", "[a%]", "[a%", "[", "[^"] {
        assert_eq!(e("a", p), perr("malformed pattern (missing ']')"), "{p}");
    }
    assert_eq!(e("alo", "(%0)"), perr("invalid capture index %0"));
    assert_eq!(e("alo", "(%1)"), perr("invalid capture index %1"));
    assert_eq!(e("alo", "%2"), perr("invalid capture index %2"));
    assert_eq!(e("alo", ".)"), perr("invalid pattern capture"));
    assert_eq!(e("alo", "(."), perr("unfinished capture"));
    assert_eq!(e("a", "%f"), perr("missing '[' after '%f' in pattern"));
    assert_eq!(e("a", "%fa"), perr("missing '[' after '%f' in pattern"));
    assert_eq!(e("a", "%b"), perr("malformed pattern (missing arguments to '%b')"));
    assert_eq!(e("a", "%ba"), perr("malformed pattern (missing arguments to '%b')"));
    assert_eq!(lgsub_n("alo", ".", "%x", None), Err(perr("invalid use of '%' in replacement string")));
    assert_eq!(lgsub_n("alo", ".", "%", None), Err(perr("invalid use of '%' in replacement string")));
    assert_eq!(lgsub_n("alo", ".", "%2", None), Err(perr("invalid capture index %2")));
    assert_eq!(lgsub_n("alo", "(.)", "%2", None), Err(perr("invalid capture index %2")));
    // Errors are raised lazily, only when matching reaches the bad part.
    assert_eq!(lmatch_r("abc", "x["), Ok(None));
    assert_eq!(lmatch_r("abc", "x%"), Ok(None));
    assert_eq!(lmatch_r("abc", "x)"), Ok(None));
    assert_eq!(lgsub_n("abc", "x", "%", None).unwrap().0, "abc");

    let many = "(.)".repeat(32);
    assert!(lmatch_r(&"x".repeat(40), &many).unwrap().is_some());
    let too_many = "(.)".repeat(33);
    assert_eq!(e(&"x".repeat(40), &too_many), perr("too many captures"));
}

#[test]
fn depth_limit() {
    // Each successful `?` nests one call; Lua allows 200 nested calls.
    let s = "a".repeat(300);
    assert!(lmatch_r(&s, &"a?".repeat(199)).unwrap().is_some());
    assert_eq!(lmatch_r(&s, &"a?".repeat(200)), Err(perr("pattern too complex")));
    // Long patterns without nesting are fine.
    assert!(lmatch_r(&s, &"a".repeat(300)).unwrap().is_some());
    assert!(lmatch_r(&s, &"a*".repeat(150)).unwrap().is_some());
}

#[test]
fn budget_stops_exponential_patterns() {
    let s = "a".repeat(5000);
    let start = std::time::Instant::now();
    let mut budget = Budget::new(1_000_000);
    let r = find(s.as_bytes(), b".-.-.-.-.-.-.-.-.-b", 0, &mut budget);
    assert_eq!(r, Err(Error::BudgetExhausted));
    assert_eq!(budget.remaining(), 0);
    assert!(start.elapsed() < std::time::Duration::from_millis(500), "{:?}", start.elapsed());
    // Further use of an exhausted budget fails immediately.
    assert_eq!(find(b"a", b"a", 0, &mut budget), Err(Error::BudgetExhausted));
}

#[test]
fn budget_is_linear_for_simple_patterns() {
    let s = "hello world ".repeat(1000);
    let mut budget = Budget::new(10 * s.len() as u64);
    let (out, n) = gsub_str(s.as_bytes(), b"%w+", b"<%0>", None, &mut budget).unwrap();
    assert_eq!(n, 2000);
    assert_eq!(out.len(), s.len() + 4000);
    let mut budget = Budget::new(10 * s.len() as u64);
    assert_eq!(find(s.as_bytes(), b"x", 0, &mut budget), Ok(None));
}

#[test]
fn budget_charge_semantics() {
    let mut b = Budget::new(5);
    assert_eq!(b.charge(3), Ok(()));
    assert_eq!(b.remaining(), 2);
    assert_eq!(b.charge(3), Err(Error::BudgetExhausted));
    assert_eq!(b.remaining(), 0);
    assert_eq!(Budget::unlimited().remaining(), u64::MAX);
}

#[test]
fn specials_and_plain() {
    assert!(!has_specials(b"abc)]}"));
    for &c in SPECIALS {
        assert!(has_specials(&[b'x', c]));
    }
    assert!(has_specials(b"a\0."));
    assert_eq!(find_plain(b"abcabc", b"bc", 0), Some(1));
    assert_eq!(find_plain(b"abcabc", b"bc", 2), Some(4));
    assert_eq!(find_plain(b"abc", b"", 3), Some(3));
    assert_eq!(find_plain(b"abc", b"", 4), None);
    assert_eq!(find_plain(b"abc", b"abcd", 0), None);
}

#[test]
fn error_display() {
    assert_eq!(perr("too many captures").to_string(), "too many captures");
    let g: GsubError<String> = Error::BudgetExhausted.into();
    assert_eq!(g.to_string(), Error::BudgetExhausted.to_string());
}

#[test]
fn deepest_nesting_fits_a_small_stack() {
    // The recursion is bounded by MAX_MATCH_DEPTH, so even a debug build
    // needs little stack for the deepest allowed nesting.
    let worker = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let exact = "a".repeat(MAX_MATCH_DEPTH - 1);
            let long = "a".repeat(MAX_MATCH_DEPTH + 1);
            for piece in ["a?", "a-"] {
                // Every piece nests one call: the deepest allowed nesting.
                let p = format!("{}$", piece.repeat(MAX_MATCH_DEPTH - 1));
                let r = find(exact.as_bytes(), p.as_bytes(), 0, &mut Budget::unlimited());
                assert!(matches!(r, Ok(Some(_))), "{piece}: {r:?}");
                let p = format!("{}$", piece.repeat(MAX_MATCH_DEPTH));
                let r = find(long.as_bytes(), p.as_bytes(), 0, &mut Budget::unlimited());
                assert_eq!(r, Err(perr("pattern too complex")), "{piece}");
            }
            let p = "(".repeat(MAX_CAPTURES) + "a" + &")".repeat(MAX_CAPTURES);
            assert!(find(b"a", p.as_bytes(), 0, &mut Budget::unlimited()).unwrap().is_some());
        })
        .unwrap();
    worker.join().unwrap();
}

#[test]
fn a_refill_function_extends_the_budget_until_it_grants_none() {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    fn three_times() -> u64 {
        if CALLS.fetch_add(1, Ordering::Relaxed) < 3 {
            100
        } else {
            0
        }
    }
    let s = "a".repeat(1000);
    // About 2 steps per byte: more than the 300 steps the refills grant.
    let mut budget = Budget::with_refill(0, three_times);
    assert_eq!(find(s.as_bytes(), b"a*b", 0, &mut budget), Err(Error::BudgetExhausted));
    assert_eq!(CALLS.load(Ordering::Relaxed), 4);
    assert_eq!(budget.remaining(), 0);
    assert!(budget.used() <= 300, "{}", budget.used());
    // Enough refills: the same call completes, and used() counts them all.
    fn always() -> u64 {
        100
    }
    let mut budget = Budget::with_refill(0, always);
    assert_eq!(find(s.as_bytes(), b"a*b", 0, &mut budget), Ok(None));
    assert!(budget.used() > 1000, "{}", budget.used());
}
