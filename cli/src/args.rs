//! The command line: flags and subcommands (clap derive).

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};

const GLOBAL: &str = "Global options";

/// The highest `--max-body-mib`: 1 TiB, far past any memory slcli could use.
pub const MAX_BODY_MIB: u64 = 1 << 20;

const AFTER_HELP: &str = "\
The server URL comes from --url, else SLCLI_URL, else the file written by `slcli connect`.

Exit status: 0 on success; 1 on any error (usage errors included), a file `slcli deploy` \
could not deploy, or a failed `slcli test` case; 2 when `slcli resolve` finds the invocation \
still pending.";

/// Command-line client for SL, the self-hosted serverless platform for Lua functions.
#[derive(Debug, Parser)]
#[command(name = "slcli", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Server URL, e.g. http://127.0.0.1:8080 (overrides SLCLI_URL and the saved URL)
    #[arg(long, global = true, value_name = "URL", help_heading = GLOBAL)]
    pub url: Option<String>,

    /// API token, sent as `Authorization: Bearer TOKEN` (overrides SLCLI_TOKEN and the saved token;
    /// with `connect`, saved beside the URL)
    #[arg(long, global = true, value_name = "TOKEN", help_heading = GLOBAL)]
    pub token: Option<String>,

    /// Print the server's response body (JSON; raw DEL and C1 controls as \u escapes) instead of
    /// human-readable output
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Config file that holds the server URL (env SLCLI_CONFIG) [default: ~/.slcli]
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// Give up on a request after this many seconds, 0 for never (connecting alone gives up after 5 s)
    /// [default: 5 for ping and connect, 600 for the others]
    #[arg(long, global = true, value_name = "SECS", help_heading = GLOBAL)]
    pub timeout_secs: Option<u64>,

    /// Read at most this many MiB of any answer of the server; a bigger one is an error
    /// (env SLCLI_MAX_BODY_MIB) [default: 256]
    #[arg(
        long,
        global = true,
        value_name = "MIB",
        value_parser = clap::value_parser!(u64).range(1..=MAX_BODY_MIB),
        help_heading = GLOBAL
    )]
    pub max_body_mib: Option<u64>,

    #[command(subcommand)]
    pub command: Command,
}

/// The default `--timeout-secs` of `ping` and `connect`: a server answers
/// `GET /ping` at once, so one that has not answered in this long is not
/// going to (it accepted the connection but hangs, or is not an HTTP server).
pub const PING_TIMEOUT_SECS: u64 = 5;

/// The default `--timeout-secs` of the other commands: long enough for a
/// blocking run at the server's longest timeout (300 s) and a big answer.
pub const TIMEOUT_SECS: u64 = 600;

impl Cli {
    /// The seconds a request may take (0: no limit): `--timeout-secs`, or
    /// the command's default.
    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs.unwrap_or(match self.command {
            Command::Ping | Command::Connect { .. } => PING_TIMEOUT_SECS,
            _ => TIMEOUT_SECS,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that URL answers GET /ping, then save it in the config file
    Connect {
        /// Server URL, e.g. http://127.0.0.1:8080
        url: String,
    },

    /// Check that the server answers, and show the round-trip time
    Ping,

    /// List the actions with their version, size and limits ("[]" when there are none)
    List,

    /// Show an action's metadata and Lua source
    Get {
        /// Action name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,

        /// Write only the source, its exact bytes, to FILE ("-" for standard output, when it is not a terminal)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },

    /// Upload a new action from a Lua file
    Create(CreateArgs),

    /// Replace an action's code and/or limits (makes a new version)
    Update(UpdateArgs),

    /// Delete an action
    Delete {
        /// Action name
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        name: String,
    },

    /// Run an action: with -b wait for its result, otherwise print an invocation ID at once
    Run(RunArgs),

    /// Print the result of an asynchronous invocation (exit status 2 while it is still pending)
    Resolve(ResolveArgs),

    /// List recent invocations, newest first
    Invocations(InvocationsArgs),

    /// List the plugins the server loaded, with their versions
    Plugins,

    /// Add, list or delete the HTTP routes that map requests to actions
    #[command(subcommand, long_about = ROUTE_ABOUT)]
    Route(RouteCommand),

    /// Deploy a directory of Lua files (and its sl.toml) as actions and routes
    #[command(long_about = crate::deploy::LONG_ABOUT)]
    Deploy(DirArgs),

    /// Deploy a directory, then watch it and deploy every change (until Ctrl-C)
    #[command(long_about = crate::dev::LONG_ABOUT)]
    Dev(DirArgs),

    /// Run the Lua tests (*_test.lua) of a directory on the server
    #[command(long_about = crate::testrun::LONG_ABOUT)]
    Test(TestArgs),
}

const ROUTE_ABOUT: &str = "\
Add, list or delete HTTP routes.

A route maps requests on slserver's routes listener (the `Routes { host, port }` block of its \
config, or `slserver --routes-listen HOST:PORT`) to an action: a method (or * for any), an \
optional host (absent = any host) and a path such as /users/:id. The routes of an app \
directory are best kept in its sl.toml (see `slcli help deploy`).

    slcli route add GET /users/:id users.get --host example.com
    slcli route list
    slcli route delete GET /users/:id --host example.com

Quote * for the shell: slcli route add '*' /hook hook.";

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Add a route: requests for METHOD PATH (on HOST) run ACTION
    ///
    /// Prints `route added GET example.com/users/:id -> users.get`. Fails if an equivalent route
    /// exists (409 conflict: delete it first), the action does not exist (404), or the method,
    /// path or host is invalid (400).
    Add {
        /// HTTP method, e.g. GET or POST; * for any method
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        method: String,
        /// Path, e.g. /users/:id
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        path: String,
        /// Action to run
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        action: String,
        /// Only for requests to this host (default: any host)
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
    },

    /// List the routes: METHOD, HOST (* for any), PATH and ACTION ("[]" when there are none)
    List,

    /// Delete the route for METHOD PATH (on HOST)
    ///
    /// Prints `route deleted GET /users/:id`; fails with 404 if there is no such route.
    Delete {
        /// HTTP method of the route, or *
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        method: String,
        /// Path of the route, as added
        #[arg(value_parser = NonEmptyStringValueParser::new())]
        path: String,
        /// Host of the route (default: the route for any host)
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// The app directory: *.lua files (users/get.lua is the action users.get) and an optional sl.toml
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The directory holding the *_test.lua files (searched at any depth)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Run only the cases whose label (`FILE: FUNCTION`) contains SUBSTRING
    #[arg(long, value_name = "SUBSTRING")]
    pub filter: Option<String>,
}

/// Per-action limits; 0 or absent means the server default.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Memory limit of the action's Lua state, in kilobytes (KiB); 0 = server default
    #[arg(short, long, value_name = "KB")]
    pub maxmem: Option<u64>,

    /// Wall-clock limit of one invocation, in milliseconds; 0 = server default
    #[arg(short, long, value_name = "MS")]
    pub timeout: Option<u64>,

    /// VM instruction budget of one invocation; 0 = server default
    #[arg(short, long, value_name = "N")]
    pub instructions: Option<u64>,
}

impl LimitArgs {
    pub fn is_empty(&self) -> bool {
        self.maxmem.is_none() && self.timeout.is_none() && self.instructions.is_none()
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Action name: 1 to 128 letters, digits, '-', '_' or '.' (not '.' or '..')
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// Lua source file defining a global function `main(args)`
    #[arg(short, long, value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Action name
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// New Lua source file (give at least one of -f, -m, -t, -i)
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Action name
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: String,

    /// Block: wait for the result and print it (a string result is printed without quotes)
    #[arg(short, long)]
    pub block: bool,

    /// Read the action's args, a JSON object, from FILE
    #[arg(short, long, value_name = "FILE", conflicts_with = "data")]
    pub payload: Option<PathBuf>,

    /// The action's args as an inline JSON object, e.g. '{"name": "World"}'
    #[arg(short, long, value_name = "JSON")]
    pub data: Option<String>,

    /// Send the asynchronous run with this Idempotency-Key: the same command run again gets the same
    /// invocation ID and the action runs once; a run whose answer is lost is retried
    #[arg(short = 'k', long, value_name = "KEY", conflicts_with = "block")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Invocation ID, as printed by `slcli run NAME`
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub id: String,

    /// Wait up to SECS seconds for a pending invocation to finish (server default 1, at most 60)
    #[arg(short, long, value_name = "SECS")]
    pub wait: Option<u64>,
}

#[derive(Debug, Args)]
pub struct InvocationsArgs {
    /// Only the invocations of this action
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub name: Option<String>,

    /// At most N records (server default 50, at most 1000)
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn payload_and_data_conflict() {
        let r = Cli::try_parse_from(["slcli", "run", "x", "-p", "a.json", "-d", "{}"]);
        assert!(r.is_err());
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from(["slcli", "list", "--json", "--url", "http://h:1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.url.as_deref(), Some("http://h:1"));
        let cli = Cli::try_parse_from(["slcli", "--timeout-secs", "3", "run", "x", "-b"]).unwrap();
        assert_eq!(cli.timeout_secs(), 3);
        assert!(matches!(cli.command, Command::Run(RunArgs { block: true, .. })));
    }

    #[test]
    fn ping_and_connect_give_up_sooner_by_default() {
        let timeout = |args: &[&str]| Cli::try_parse_from(args).unwrap().timeout_secs();
        assert_eq!(timeout(&["slcli", "ping"]), PING_TIMEOUT_SECS);
        assert_eq!(timeout(&["slcli", "connect", "http://h:1"]), PING_TIMEOUT_SECS);
        assert_eq!(timeout(&["slcli", "list"]), TIMEOUT_SECS);
        assert_eq!(timeout(&["slcli", "run", "x", "-b"]), TIMEOUT_SECS);
        assert_eq!(timeout(&["slcli", "ping", "--timeout-secs", "60"]), 60);
        assert_eq!(timeout(&["slcli", "--timeout-secs", "0", "connect", "http://h:1"]), 0);
    }

    #[test]
    fn the_body_bound_is_at_least_one_mib() {
        let cli = Cli::try_parse_from(["slcli", "list", "--max-body-mib", "1"]).unwrap();
        assert_eq!(cli.max_body_mib, Some(1));
        for bad in ["0", "-1", "x", "1048577"] {
            assert!(Cli::try_parse_from(["slcli", "list", "--max-body-mib", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_absent_unless_given() {
        let cli = Cli::try_parse_from(["slcli", "create", "x", "-f", "x.lua", "-t", "200"]).unwrap();
        let Command::Create(c) = cli.command else { panic!() };
        assert_eq!((c.limits.maxmem, c.limits.timeout, c.limits.instructions), (None, Some(200), None));
    }
}
