//! `slserver`: runs SL from a config.lua.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use slserver::plugin::PluginHost;
use slserver::{open_store, Config, Server};

/// SL: a self-hosted serverless platform for Lua functions.
#[derive(Parser)]
#[command(name = "slserver", version, about)]
struct Args {
    /// The configuration file (Lua). Relative paths in it are resolved
    /// against its directory.
    #[arg(short, long, default_value = "config.lua", env = "SL_CONFIG")]
    config: PathBuf,
    /// Listen on this address instead of the one in the config
    /// (`HOST:PORT`; port 0 picks a free port, printed at start-up).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slserver: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut cfg =
        Config::load(&args.config).with_context(|| format!("invalid configuration {}", args.config.display()))?;
    if let Some(listen) = &args.listen {
        let (host, port) = listen.rsplit_once(':').context("--listen must be HOST:PORT")?;
        cfg.server.host = host.trim_matches(['[', ']']).to_string();
        cfg.server.port = port.parse().context("--listen: invalid port")?;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("SL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{},mio=warn", cfg.log_level)));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let plugins = PluginHost::load_all(&cfg.plugins).context("cannot load the configured plugins")?;
    for info in plugins.infos() {
        tracing::info!(plugin = %info, "plugin loaded");
    }
    let store = open_store(&cfg.store).with_context(|| format!("cannot open the store ({:?})", cfg.store))?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&shutdown)).context("cannot install signal handlers")?;
    }
    let cfg = Arc::new(cfg);
    let mut server = Server::bind(Arc::clone(&cfg), store, Arc::new(plugins), shutdown)
        .with_context(|| format!("cannot listen on {}:{}", cfg.server.host, cfg.server.port))?;
    let addr = server.local_addr()?;
    tracing::info!(store = ?cfg.store, "slserver listening on http://{addr}");
    println!("slserver listening on http://{addr}");
    server.run().context("the reactor failed")?;
    Ok(())
}
