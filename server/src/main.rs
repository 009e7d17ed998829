//! `slserver`: runs SL from a config.lua.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sl_store::StoreError;
use slserver::plugin::PluginHost;
use slserver::{open_store, Config, StoreConfig};

/// SL: a self-hosted serverless platform for Lua functions.
#[derive(Parser)]
#[command(name = "slserver", version, about)]
struct Args {
    /// The configuration file (Lua). Relative paths in it are resolved
    /// against its directory.
    #[arg(short, long, default_value = "config.lua", env = "SL_CONFIG")]
    config: PathBuf,
    /// Only check the configuration, print a summary and exit (0 if valid).
    #[arg(long)]
    check: bool,
    /// Listen on this address instead of the one in the config
    /// (`HOST:PORT`; port 0 picks a free port, printed at start-up).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Serve routes on this address instead of the one in the config's
    /// `Routes` block (enables routes if the config has none).
    #[arg(long, value_name = "HOST:PORT")]
    routes_listen: Option<String>,
}

/// Splits `HOST:PORT` (the host may be a bracketed IPv6 address).
fn host_port(s: &str, flag: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s.rsplit_once(':').with_context(|| format!("{flag} must be HOST:PORT"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port.parse().with_context(|| format!("{flag}: invalid port"))?))
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
        (cfg.server.host, cfg.server.port) = host_port(listen, "--listen")?;
    }
    if let Some(listen) = &args.routes_listen {
        let (host, port) = host_port(listen, "--routes-listen")?;
        cfg.routes = Some(slserver::config::RoutesConfig { host, port });
    }
    if args.check {
        println!(
            "{}: valid (store {:?}, listen {}:{}, routes {}, {} plugin(s))",
            args.config.display(),
            cfg.store,
            cfg.server.host,
            cfg.server.port,
            cfg.routes.as_ref().map_or("off".to_string(), |r| format!("{}:{}", r.host, r.port)),
            cfg.plugins.len()
        );
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("SL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{},mio=warn", cfg.log_level)));
    // Colours only on a terminal: a log written to a file or a pipe gets plain text.
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();

    // The host logs each plugin it loads.
    let plugins = PluginHost::load_all(&cfg.plugins).context("cannot load the configured plugins")?;
    raise_fd_limit(cfg.server.max_connections);
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&shutdown)).context("cannot install signal handlers")?;
    }
    let store = loop {
        match open_store(&cfg) {
            Ok(store) => break store,
            // A database server may come up after us: say so and retry.
            Err(e @ StoreError::Unavailable(_)) if matches!(cfg.store, StoreConfig::Mongodb { .. }) => {
                tracing::error!("{e}; retrying in 2 s");
                for _ in 0..20 {
                    if shutdown.load(Ordering::Relaxed) {
                        anyhow::bail!("stopped while waiting for the store");
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(e) => return Err(e).with_context(|| format!("cannot open the store ({:?})", cfg.store)),
        }
    };
    let cfg = Arc::new(cfg);
    slserver::serve(Arc::clone(&cfg), store, Arc::new(plugins), shutdown, |addr, routes| {
        // The addresses go to stdout, once (scripts and tests read them
        // there); the log says the rest, so that a terminal or a file that
        // takes both streams shows no line twice.
        tracing::info!(store = ?cfg.store, workers = cfg.server.workers, "started");
        println!("slserver listening on http://{addr}");
        match routes {
            Some(r) => println!("slserver serving routes on http://{r}"),
            None => tracing::info!("routes are not served: add Routes {{ port = 8081 }} to the config to serve them"),
        }
    })
    .with_context(|| format!("cannot serve on {}:{}", cfg.server.host, cfg.server.port))?;
    Ok(())
}

/// Raises the soft limit on open files toward the hard limit, so that
/// `Server.max_connections` connections (plus files, sockets of the pools
/// and plugins) fit.
fn raise_fd_limit(max_connections: usize) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let want = (max_connections as libc::rlim_t).saturating_mul(FDS_PER_CONNECTION).max(lim.rlim_cur);
    let new = want.min(lim.rlim_max);
    if new > lim.rlim_cur {
        let raised = libc::rlimit { rlim_cur: new, rlim_max: lim.rlim_max };
        // SAFETY: setrlimit reads the struct we pass; raising the soft limit
        // up to the hard limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return;
        }
    }
    if (new as usize) < max_connections + 64 {
        tracing::warn!(
            open_files = new,
            max_connections,
            "the open-file limit is below Server.max_connections: raise it (ulimit -n) or lower max_connections"
        );
    }
}

/// Descriptors wanted per connection slot: room for files, pools, plugins.
const FDS_PER_CONNECTION: libc::rlim_t = 2;
