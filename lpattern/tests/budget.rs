//! Budget behaviour: crafted pathological patterns exhaust the budget
//! quickly, ordinary patterns on large subjects cost a small multiple of
//! the subject length.

use std::time::{Duration, Instant};

use sl_lpattern::{find, gsub, gsub_str, Budget, Error, GMatch, GsubError};

/// Generous wall-clock bound for 1M budget steps in a debug build on a
/// slow, shared CI machine (typically it takes a few milliseconds).
const FAST: Duration = Duration::from_millis(100);

/// Run `f` with a budget of one million steps; it must run out of budget,
/// quickly.
fn exhausts(what: &str, f: impl FnOnce(&mut Budget) -> Result<(), Error>) {
    let mut budget = Budget::new(1_000_000);
    let start = Instant::now();
    let r = f(&mut budget);
    let took = start.elapsed();
    assert_eq!(r, Err(Error::BudgetExhausted), "{what}");
    assert_eq!(budget.remaining(), 0, "{what}");
    eprintln!("{what}: exhausted in {took:?}");
    assert!(took < FAST, "{what} took {took:?}");
}

#[test]
fn crafted_patterns_exhaust_the_budget_fast() {
    let a5000 = "a".repeat(5000);
    let s = a5000.as_bytes();
    exhausts("find .-.-.-.-.-.-.-.-.-b", |b| find(s, b".-.-.-.-.-.-.-.-.-b", 0, b).map(drop));
    exhausts("find a*a*a*a*a*a*a*a*b", |b| find(s, b"a*a*a*a*a*a*a*a*b", 0, b).map(drop));
    exhausts("match (.-)(.-)(.-)(.-)x$", |b| find(s, b"(.-)(.-)(.-)(.-)x$", 0, b).map(drop));
    exhausts("find .*.*.*.*=", |b| find(s, b".*.*.*.*=", 0, b).map(drop));
    exhausts("find [%a%d_%s]*[%a%d_%s]*[%a%d_%s]*!", |b| find(s, b"[%a%d_%s]*[%a%d_%s]*[%a%d_%s]*!", 0, b).map(drop));
    exhausts("gsub .-.-.-b", |b| gsub_str(s, b".-.-.-b", b"x", None, b).map(drop));
    exhausts("gmatch .-.-.-b", |b| GMatch::new(s, &b".-.-.-b"[..], 0).next(b).map(drop));

    // Quadratic cases: back-references and unbalanced %b over a long
    // subject.
    let big = "a".repeat(200_000);
    exhausts("find (.*)%1b", |b| find(big.as_bytes(), b"(.*)%1b", 0, b).map(drop));
    let parens = "(".repeat(200_000);
    exhausts("find %b()", |b| find(parens.as_bytes(), b"%b()", 0, b).map(drop));
    // A huge bracket class is charged by its size.
    let set = format!("[{}]*x", "b".repeat(100_000));
    exhausts("find [bbbb...]*x", |b| find(s, set.as_bytes(), 0, b).map(drop));
}

#[test]
fn huge_gsub_output_is_charged() {
    // 100k matches each replaced by 1 KiB would be 100 MB of output.
    let s = "a".repeat(100_000);
    let repl = "x".repeat(1024);
    let mut budget = Budget::new(1_000_000);
    let r = gsub_str(s.as_bytes(), b"a", repl.as_bytes(), None, &mut budget);
    assert_eq!(r, Err(Error::BudgetExhausted));
}

#[test]
fn budget_errors_pass_through_gsub_callbacks() {
    let s = "a".repeat(5000);
    let mut budget = Budget::new(1_000_000);
    let r = gsub(s.as_bytes(), b".-.-.-.-b", None, &mut budget, |_| Ok::<_, ()>(None));
    assert_eq!(r, Err(GsubError::Match(Error::BudgetExhausted)));
}

/// Run `f` on a budget of 10 steps per subject byte and report the cost.
fn linear(what: &str, len: usize, f: impl FnOnce(&mut Budget) -> Result<(), Error>) {
    let limit = 10 * len as u64;
    let mut budget = Budget::new(limit);
    let start = Instant::now();
    f(&mut budget).unwrap_or_else(|e| panic!("{what}: {e}"));
    let used = limit - budget.remaining();
    eprintln!("{what}: {:.2} steps/byte, {:?}", used as f64 / len as f64, start.elapsed());
}

fn text(len: usize) -> Vec<u8> {
    b"The quick brown fox, jumps over 13 lazy dogs!\n".iter().copied().cycle().take(len).collect()
}

#[test]
fn one_megabyte_subjects_cost_linear_budget() {
    let s = text(1 << 20);
    let n = s.len();
    linear("find x (absent)", n, |b| {
        assert_eq!(find(&s, b"X", 0, b)?, None);
        Ok(())
    });
    linear("find %d+$ (absent)", n, |b| {
        assert_eq!(find(&s, b"%d+$", 0, b)?, None);
        Ok(())
    });
    linear("match ^(.-)$", n, |b| {
        assert!(find(&s, b"^(.-)$", 0, b)?.is_some());
        Ok(())
    });
    linear("match ^.*$", n, |b| {
        assert!(find(&s, b"^.*$", 0, b)?.is_some());
        Ok(())
    });
    linear("gsub %s+ -> ' '", n, |b| {
        gsub_str(&s, b"%s+", b" ", None, b)?;
        Ok(())
    });
    linear("gsub [%w_]+ -> <%0>", n, |b| {
        gsub_str(&s, b"[%w_]+", b"<%0>", None, b)?;
        Ok(())
    });
    linear("gsub (%w+) (%w+) -> %2 %1", n, |b| {
        gsub_str(&s, b"(%w+) (%w+)", b"%2 %1", None, b)?;
        Ok(())
    });
    linear("gsub ^%s*(.-)%s*$ -> %1", n, |b| {
        gsub_str(&s, b"^%s*(.-)%s*$", b"%1", None, b)?;
        Ok(())
    });
    linear("gmatch %a+", n, |b| {
        let mut g = GMatch::new(&s[..], &b"%a+"[..], 0);
        let mut count = 0;
        while g.next(b)?.is_some() {
            count += 1;
        }
        assert!(count > 100_000);
        Ok(())
    });
    linear("gmatch %f[%w]%w+", n, |b| {
        let mut g = GMatch::new(&s[..], &b"%f[%w]%w+"[..], 0);
        while g.next(b)?.is_some() {}
        Ok(())
    });
    linear("gsub %b() on balanced text", n, |b| {
        let s: Vec<u8> = b"(a(b)c) x ".iter().copied().cycle().take(n).collect();
        gsub_str(&s, b"%b()", b"", None, b)?;
        Ok(())
    });
}
