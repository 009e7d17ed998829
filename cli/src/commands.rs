//! One function per subcommand: build the request, send it, print the answer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Map};

use crate::args::{
    Cli, Command, CreateArgs, DirArgs, InvocationsArgs, LimitArgs, ResolveArgs, RouteCommand, RunArgs, TestArgs,
    UpdateArgs,
};
use crate::client::{self, encode, snippet, Client, Method, Reply};
use crate::config::{self, Config};
use crate::json::Scalar;
use crate::output::{self, emit, visible, Lines};

/// How a command that did not fail ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Done,
    /// `resolve` found the invocation still queued or running (exit status 2).
    Pending,
    /// The command printed what failed (a file `deploy` could not deploy, a
    /// failed test): exit status 1 without a further message.
    Failed,
}

/// Runs the command line.
pub fn run(cli: Cli) -> Result<Status> {
    let env_config = std::env::var_os("SLCLI_CONFIG").filter(|p| !p.is_empty());
    let config_path = || match cli.config.clone().or_else(|| env_config.clone().map(PathBuf::from)) {
        Some(path) => Ok(path),
        None => config::default_path(),
    };
    let timeout_secs = cli.timeout_secs();
    let mut timeout = (timeout_secs > 0).then(|| Duration::from_secs(timeout_secs));
    if let (Command::Resolve(ResolveArgs { wait: Some(wait), .. }), Some(t)) = (&cli.command, &mut timeout) {
        // Leave the server time to answer after waiting.
        *t = (*t).max(Duration::from_secs(wait.saturating_add(10)));
    }
    let json = cli.json;
    let max_body = config::max_body(cli.max_body_mib, std::env::var("SLCLI_MAX_BODY_MIB").ok().as_deref())?;

    let env_token = std::env::var("SLCLI_TOKEN").ok().filter(|t| !t.is_empty());
    if let Command::Connect { url } = &cli.command {
        let client = |url: &str| Client::new(url, timeout).with_max_body(max_body);
        return connect(&config_path()?, url, cli.token.as_deref().or(env_token.as_deref()), client, json);
    }

    let env_url = std::env::var("SLCLI_URL").ok();
    let (url, source) = config::resolve_url(cli.url.as_deref(), env_url.as_deref(), || {
        let path = config_path()?;
        let config = Config::load(&path)?;
        Ok(config.url()?.map(|u| (u.to_string(), path)))
    })?;
    let url = client::normalize_url(&url).with_context(|| format!("server URL from {source}"))?;
    // The saved token goes only to the saved server.
    let saved_token = match &source {
        config::UrlSource::File(path) => Config::load(path)?.token()?.map(str::to_string),
        _ => None,
    };
    let token = cli.token.clone().or(env_token).or(saved_token);
    let client = Client::new(&url, timeout).with_token(token.as_deref()).with_max_body(max_body);
    let out = Out { json };

    match cli.command {
        Command::Connect { .. } => unreachable!("handled above"),
        Command::Ping => ping(&client, out),
        Command::List => list(&client, out),
        Command::Get { name, output: None } => get(&client, out, &name),
        Command::Get { name, output: Some(file) } => save_source(&client, &name, &file),
        Command::Create(args) => create(&client, out, args),
        Command::Update(args) => update(&client, out, args),
        Command::Delete { name } => delete(&client, out, &name),
        Command::Run(args) => run_action(&client, out, args),
        Command::Resolve(args) => resolve(&client, out, args),
        Command::Invocations(args) => invocations(&client, out, args),
        Command::Plugins => plugins(&client, out),
        Command::Route(command) => route(&client, out, command),
        Command::Topic(command) => crate::topics::command(&client, out.json, command).map(|()| Status::Done),
        Command::Sub(command) => crate::subscriptions::sub_command(&client, out.json, command).map(|()| Status::Done),
        Command::Dlq(command) => crate::subscriptions::dlq_command(&client, out.json, command).map(|()| Status::Done),
        Command::Schedule(command) => crate::schedules::command(&client, out.json, command).map(|()| Status::Done),
        Command::Deploy(DirArgs { dir }) => Ok(status(crate::deploy::command(&client, &url, &dir)?)),
        Command::Dev(DirArgs { dir }) => crate::dev::command(&client, &url, &dir).map(|()| Status::Done),
        Command::Test(TestArgs { dir, filter }) => {
            Ok(status(crate::testrun::command(&client, &dir, filter.as_deref())?))
        }
    }
}

/// `Done` if everything went through, else `Failed` (exit status 1).
fn status(all_ok: bool) -> Status {
    if all_ok {
        Status::Done
    } else {
        Status::Failed
    }
}

fn route(client: &Client, out: Out, command: RouteCommand) -> Result<Status> {
    use crate::routes::{self, Route};
    match command {
        RouteCommand::Add { method, path, action, host } => {
            routes::add_command(client, out.json, &Route::new(&method, host.as_deref().unwrap_or(""), &path, &action))?
        }
        RouteCommand::List => routes::list_command(client, out.json)?,
        RouteCommand::Delete { method, path, host } => {
            routes::delete_command(client, out.json, &method, host.as_deref().unwrap_or(""), &path)?
        }
    }
    Ok(Status::Done)
}

/// Prints either the server's body (`--json`) or a human rendering of it.
#[derive(Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    fn print(self, reply: &Reply, human: impl FnOnce() -> Result<String>) -> Result<Status> {
        if self.json {
            output::emit_json(&reply.body)?;
        } else {
            emit(&human()?)?;
        }
        Ok(Status::Done)
    }

    /// [`print`](Self::print) for renderings that write as they go (tables, results).
    fn stream(self, reply: &Reply, human: impl FnOnce(&mut dyn std::io::Write) -> Result<()>) -> Result<Status> {
        if self.json {
            output::emit_json(&reply.body)?;
        } else {
            output::to_stdout(human)?;
        }
        Ok(Status::Done)
    }
}

fn connect(
    config_path: &Path,
    raw_url: &str,
    token: Option<&str>,
    make_client: impl Fn(&str) -> Client,
    json: bool,
) -> Result<Status> {
    let url = client::normalize_url(raw_url)?;
    // Read the file first: a broken one fails before anything else happens.
    let mut config = Config::load(config_path)?;
    let client = make_client(&url).with_token(token);
    let reply = client
        .send(Method::Get, "/ping", None)?
        .success()
        .with_context(|| format!("{url} did not answer GET /ping like an SL server; not saved"))?;
    if token.is_some() {
        // Any valid token may read invocation results: an unknown id gives
        // 404 with a valid token and 401 without one.
        let check = client.send(Method::Get, "/invocation/00000000-0000-0000-0000-000000000000?wait=0", None)?;
        if check.status == 401 {
            bail!("{url} refused the token (401); not saved");
        }
    }
    config.set_url(&url);
    config.set_token(token);
    config.save()?;
    Out { json }.print(&reply, || Ok(format!("Connected to {url}")))
}

fn ping(client: &Client, out: Out) -> Result<Status> {
    let start = Instant::now();
    let reply = client.call(Method::Get, "/ping", None)?;
    let rtt = start.elapsed();
    out.print(&reply, || {
        let body = visible(reply.body.trim(), Lines::One);
        let body = if body.is_empty() { "OK" } else { &body };
        Ok(format!("{body} ({:.1} ms)", rtt.as_secs_f64() * 1000.0))
    })
}

fn list(client: &Client, out: Out) -> Result<Status> {
    let reply = client.call(Method::Get, "/actions", None)?;
    out.stream(&reply, |w| output::actions_table(&reply.body, w))
}

fn get(client: &Client, out: Out, name: &str) -> Result<Status> {
    let reply = client.call(Method::Get, &format!("/actions/{}", encode(name)), None)?;
    out.print(&reply, || output::action_details(&reply.body))
}

/// `slcli get NAME -o FILE`: the source's exact bytes to `FILE`, or to
/// stdout for `-` (refused on a terminal, which raw bytes could drive).
fn save_source(client: &Client, name: &str, file: &Path) -> Result<Status> {
    use std::io::{IsTerminal, Write};
    let to_stdout = file.as_os_str() == "-";
    if to_stdout && std::io::stdout().is_terminal() {
        bail!(
            "standard output is a terminal: write the source to a file, or redirect it (`slcli get {name}` shows it)"
        );
    }
    let reply = client.call(Method::Get, &format!("/actions/{}", encode(name)), None)?;
    let source = output::action_source(&reply.body)?;
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&source)?;
        out.flush()?;
    } else {
        std::fs::write(file, &source).with_context(|| format!("cannot write {}", file.display()))?;
        emit(&format!("Wrote the source of {name} ({} bytes) to {}", source.len(), file.display()))?;
    }
    Ok(Status::Done)
}

/// The request body of create and update.
fn action_body(name: Option<&str>, file: Option<&PathBuf>, limits: &LimitArgs) -> Result<Vec<u8>> {
    let mut body = Map::new();
    if let Some(name) = name {
        body.insert("name".into(), json!(name));
    }
    if let Some(file) = file {
        let source = std::fs::read(file).with_context(|| format!("cannot read Lua file {}", file.display()))?;
        body.insert("code".into(), json!(base64::engine::general_purpose::STANDARD.encode(source)));
    }
    for (key, value) in [("maxmem", limits.maxmem), ("timeout", limits.timeout), ("instructions", limits.instructions)]
    {
        if let Some(v) = value {
            body.insert(key.into(), json!(v));
        }
    }
    Ok(serde_json::to_vec(&body)?)
}

/// What the server answers a create or update.
#[derive(serde::Deserialize)]
struct Written {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    version: Scalar,
    #[serde(default)]
    size: Scalar,
}

/// `Created hello (version 1, 312 bytes of bytecode)`.
fn summary(verb: &str, name: &str, reply: &Reply) -> Result<String> {
    let w: Written = reply.json()?;
    let field = |v: &Scalar| match v {
        Scalar::Number(_) | Scalar::Str(_) => visible(&v.text(), Lines::One).into_owned(),
        _ => "?".to_string(),
    };
    let name = visible(w.name.as_str().unwrap_or(name), Lines::One);
    Ok(format!("{verb} {name} (version {}, {} bytes of bytecode)", field(&w.version), field(&w.size)))
}

fn create(client: &Client, out: Out, args: CreateArgs) -> Result<Status> {
    let body = action_body(Some(&args.name), Some(&args.file), &args.limits)?;
    let reply = client.call(Method::Post, "/actions", Some(&body))?;
    out.print(&reply, || summary("Created", &args.name, &reply))
}

fn update(client: &Client, out: Out, args: UpdateArgs) -> Result<Status> {
    if args.file.is_none() && args.limits.is_empty() {
        bail!("nothing to update: give at least one of -f/--file, -m/--maxmem, -t/--timeout, -i/--instructions");
    }
    let body = action_body(None, args.file.as_ref(), &args.limits)?;
    let reply = client.call(Method::Put, &format!("/actions/{}", encode(&args.name)), Some(&body))?;
    out.print(&reply, || summary("Updated", &args.name, &reply))
}

fn delete(client: &Client, out: Out, name: &str) -> Result<Status> {
    let reply = client.call(Method::Delete, &format!("/actions/{}", encode(name)), None)?;
    out.print(&reply, || Ok(format!("Deleted {name}")))
}

fn run_action(client: &Client, out: Out, args: RunArgs) -> Result<Status> {
    let body = crate::payload::load(args.payload.as_deref(), args.data.as_deref())?;
    let path = format!("/actions/{}", encode(&args.name));
    if args.block {
        let reply = client.call(Method::Post, &format!("{path}/block"), Some(&body))?;
        return out.stream(&reply, |w| output::write_result(&reply.body, w));
    }
    let reply = match &args.idempotency_key {
        Some(key) => client.call_with_key(Method::Post, &path, &body, key)?,
        None => client.call(Method::Post, &path, Some(&body))?,
    };
    out.print(&reply, || match reply.json::<Submitted>()?.id {
        Scalar::Str(id) => Ok(visible(&id, Lines::One).into_owned()),
        _ => bail!("the server's answer has no InvocationId: {}", snippet(&reply.body)),
    })
}

/// What the server answers an asynchronous run.
#[derive(serde::Deserialize)]
struct Submitted {
    #[serde(default, rename = "InvocationId")]
    id: Scalar,
}

/// What the server answers for a pending invocation.
#[derive(serde::Deserialize)]
struct Pending {
    #[serde(default)]
    status: Scalar,
}

fn resolve(client: &Client, out: Out, args: ResolveArgs) -> Result<Status> {
    let mut path = format!("/invocation/{}", encode(&args.id));
    if let Some(wait) = args.wait {
        path.push_str(&format!("?wait={wait}"));
    }
    let reply = client.call(Method::Get, &path, None)?;
    if reply.status == 202 {
        let status = reply.json::<Pending>().ok().and_then(|p| p.status.as_str().map(str::to_string));
        if out.json {
            output::emit_json(&reply.body)?;
        }
        eprintln!("pending (status: {})", visible(status.as_deref().unwrap_or("unknown"), Lines::One));
        return Ok(Status::Pending);
    }
    out.stream(&reply, |w| output::write_result(&reply.body, w))
}

fn invocations(client: &Client, out: Out, args: InvocationsArgs) -> Result<Status> {
    let mut query = Vec::new();
    if let Some(name) = &args.name {
        query.push(format!("action={}", encode(name)));
    }
    if let Some(limit) = args.limit {
        query.push(format!("limit={limit}"));
    }
    let path = if query.is_empty() { "/invocations".to_string() } else { format!("/invocations?{}", query.join("&")) };
    let reply = client.call(Method::Get, &path, None)?;
    out.stream(&reply, |w| output::invocations_table(&reply.body, w))
}

fn plugins(client: &Client, out: Out) -> Result<Status> {
    let reply = client.call(Method::Get, "/plugins", None)?;
    out.stream(&reply, |w| output::plugins_table(&reply.body, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_sends_only_given_limits() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hello.lua");
        std::fs::write(&file, "function main() return 'hi' end\n").unwrap();
        let limits = LimitArgs { maxmem: Some(0), timeout: Some(200), instructions: None };
        let body: serde_json::Value =
            serde_json::from_slice(&action_body(Some("hello"), Some(&file), &limits).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"name": "hello", "code": "ZnVuY3Rpb24gbWFpbigpIHJldHVybiAnaGknIGVuZAo=", "maxmem": 0, "timeout": 200})
        );
    }

    #[test]
    fn update_body_may_hold_limits_only() {
        let limits = LimitArgs { maxmem: None, timeout: None, instructions: Some(5) };
        let body: serde_json::Value = serde_json::from_slice(&action_body(None, None, &limits).unwrap()).unwrap();
        assert_eq!(body, json!({"instructions": 5}));
    }

    #[test]
    fn a_missing_lua_file_is_named() {
        let limits = LimitArgs { maxmem: None, timeout: None, instructions: None };
        let e = format!("{:#}", action_body(Some("x"), Some(&PathBuf::from("nope.lua")), &limits).unwrap_err());
        assert!(e.starts_with("cannot read Lua file nope.lua: "), "{e}");
    }

    #[test]
    fn summaries() {
        let reply = Reply { status: 201, body: r#"{"name":"hello","version":1,"size":312}"#.into() };
        assert_eq!(summary("Created", "hello", &reply).unwrap(), "Created hello (version 1, 312 bytes of bytecode)");
        let reply = Reply { status: 200, body: "{}".into() };
        assert_eq!(summary("Updated", "x", &reply).unwrap(), "Updated x (version ?, ? bytes of bytecode)");
    }
}
