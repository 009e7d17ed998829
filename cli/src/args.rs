//! The command line: flags and subcommands (clap derive).

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};

const GLOBAL: &str = "Global options";

const AFTER_HELP: &str = "\
The server URL comes from --url, else SLCLI_URL, else the file written by `slcli connect`.

Exit status: 0 on success; 1 on any error (usage errors included); 2 when `slcli resolve` \
finds the invocation still pending.";

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

    /// Print the server's response body as is (JSON) instead of human-readable output
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Config file that holds the server URL (env SLCLI_CONFIG) [default: ~/.slcli]
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// Give up on a request after this many seconds, 0 for never (connecting alone gives up after 5 s)
    #[arg(long, global = true, value_name = "SECS", default_value_t = 600, help_heading = GLOBAL)]
    pub timeout_secs: u64,

    #[command(subcommand)]
    pub command: Command,
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
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Invocation ID, as printed by `slcli run NAME`
    #[arg(value_parser = NonEmptyStringValueParser::new())]
    pub id: String,

    /// Wait up to SECS seconds for a pending invocation to finish (server default 5, at most 60)
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
        assert_eq!(cli.timeout_secs, 3);
        assert!(matches!(cli.command, Command::Run(RunArgs { block: true, .. })));
    }

    #[test]
    fn limits_are_absent_unless_given() {
        let cli = Cli::try_parse_from(["slcli", "create", "x", "-f", "x.lua", "-t", "200"]).unwrap();
        let Command::Create(c) = cli.command else { panic!() };
        assert_eq!((c.limits.maxmem, c.limits.timeout, c.limits.instructions), (None, Some(200), None));
    }
}
