//! `slcli`, the command-line client of SL.
//!
//! Exit status: 0 on success, 1 on any error (usage errors included, so that
//! 2 is unambiguous) and when `deploy` or `test` reported a failure, 2 when
//! `slcli resolve` finds the invocation pending.

mod app;
mod args;
mod client;
mod commands;
mod config;
mod deploy;
mod dev;
mod json;
mod locate;
mod manifest;
mod output;
mod payload;
mod plan;
mod position;
mod routes;
mod schedules;
mod state;
mod subscriptions;
mod testrun;
mod topics;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use crate::client::ServerError;
use crate::commands::Status;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" that go to stdout.
            let _ = e.print();
            return if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let json = cli.json;
    match commands::run(cli) {
        Ok(Status::Done) => ExitCode::SUCCESS,
        Ok(Status::Pending) => ExitCode::from(2),
        // The command has said what failed (a file it could not deploy, a failed test).
        Ok(Status::Failed) => ExitCode::FAILURE,
        Err(e) => report(&e, json),
    }
}

/// Prints an error once, with its context chain, and picks the exit status.
fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    let broken_pipe =
        e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe));
    if broken_pipe {
        // The reader went away (`slcli list | head`): nothing more to say.
        return ExitCode::SUCCESS;
    }
    if json {
        // Scripts get the server's error body on stdout as well.
        let server = e.chain().find_map(|c| c.downcast_ref::<ServerError>());
        if let Some(server) = server.filter(|s| !s.body.trim().is_empty()) {
            let _ = output::emit_json(&server.body);
        }
    }
    // The message may quote the server: its control characters are shown as escapes.
    eprintln!("error: {}", output::visible(&format!("{e:#}"), output::Lines::Keep));
    ExitCode::FAILURE
}
