//! In-process benchmarks of the invocation path, without HTTP: the request
//! body's JSON bytes are checked and parsed into Lua, `main(args)` runs in
//! a warm instance, and the result is serialized back to JSON bytes, as the
//! server does for `POST /actions/:name/block`. Run with `cargo bench -p sl-server --bench
//! invoke` (bench/run does); see bench/README.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use slserver::sandbox::{compile, Args, ArgsText, Budget, Instance, Step, DEFAULT_MAX_STRING};

/// The hello action of the README (and of bench/hello.lua).
const HELLO: &str = include_str!("../../bench/hello.lua");
/// The body the HTTP benchmarks POST.
const BODY: &[u8] = br#"{"name":"x"}"#;
/// The time slice the server gives one step (its `time_slice` default).
const SLICE: Duration = Duration::from_millis(1);

/// The server's default limits (config.lua): what an action created with no
/// limits of its own runs under.
fn defaults() -> Budget {
    Budget {
        memory: 65536 * 1024,
        timeout: Duration::from_millis(5000),
        instructions: 100_000_000,
        max_string: DEFAULT_MAX_STRING,
    }
}

/// Every limit set tight, as scenario 2 of bench/run creates `hello_limits`.
fn tight() -> Budget {
    Budget {
        memory: 1024 * 1024,
        timeout: Duration::from_millis(100),
        instructions: 100_000,
        max_string: DEFAULT_MAX_STRING,
    }
}

/// One invocation: JSON bytes in, `main`, JSON bytes out. Returns the
/// instance for the next invocation and the response body.
fn invoke(inst: Instance, body: &[u8], budget: Budget) -> (Instance, Vec<u8>) {
    // As the server does when the record does not keep the arguments:
    // parse the text once, and let the run push it straight into Lua.
    let args = ArgsText::parse(body.to_vec()).expect("a JSON object");
    let mut run = inst.start(Args::Text(args), budget);
    let outcome = loop {
        match run.step(SLICE) {
            Step::Done(outcome) => break outcome,
            Step::Yielded => continue,
            other => panic!("hello waited on the executor: {other:?}"),
        }
    };
    let value = outcome.result.as_ref().expect("hello succeeds");
    let out = serde_json::to_vec(value).expect("serializable result");
    let inst = run.take_instance(&outcome).expect("a successful run keeps its instance");
    (inst, out)
}

/// A warm instance: compiled, loaded from bytecode, its chunk already run.
fn warm(budget: Budget) -> Instance {
    let compiled = compile("hello", HELLO, budget).expect("hello compiles");
    let inst = Instance::from_bytecode("hello", &compiled.bytecode, DEFAULT_MAX_STRING).expect("bytecode loads");
    let (inst, out) = invoke(inst, BODY, budget);
    assert_eq!(out, br#""Hello x""#);
    inst
}

fn warm_invocation(c: &mut Criterion) {
    let mut group = c.benchmark_group("warm_invoke");
    for (name, budget) in [("hello_defaults", defaults()), ("hello_limits", tight())] {
        let mut slot = Some(warm(budget));
        group.bench_function(name, |b| {
            b.iter(|| {
                let inst = slot.take().expect("instance returned by the previous iteration");
                let (inst, out) = invoke(inst, black_box(BODY), budget);
                slot = Some(inst);
                out
            })
        });
    }
    group.finish();
}

fn cold_invocation(c: &mut Criterion) {
    let budget = tight();
    let compiled = compile("hello", HELLO, budget).expect("hello compiles");
    let mut group = c.benchmark_group("cold");
    // A new Lua state from verified bytecode and its first invocation
    // (which runs the chunk): what a request costs when no warm instance is
    // free.
    group.bench_function("instance_and_first_invoke", |b| {
        b.iter(|| {
            let inst = Instance::from_bytecode("hello", black_box(&compiled.bytecode), DEFAULT_MAX_STRING)
                .expect("bytecode loads");
            invoke(inst, BODY, budget).1
        })
    });
    // What create does before the store write: text-mode load, dump, chunk run.
    group.bench_function("compile", |b| b.iter(|| compile("hello", black_box(HELLO), budget).expect("compiles")));
    group.finish();
}

criterion_group!(benches, warm_invocation, cold_invocation);
criterion_main!(benches);
