//! Workers: the threads of one process (`Server { workers = N }`), as
//! nginx runs worker processes. Each worker is one [`Reactor`] (the event
//! loop) serving one [`App`] (the application state: Lua states, caches,
//! pools); each has its own listener on the same port (`SO_REUSEPORT`, so
//! the kernel spreads connections), and they share only the store and the
//! plugins.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sl_store::Store;
use socket2::{Domain, Protocol, Socket, Type};

use crate::app::App;
use crate::config::Config;
use crate::http::ParseLimits;
use crate::plugin::PluginHost;
use crate::reactor::{Reactor, Settings};
use crate::state::Peers;

/// The sockets one worker accepts clients on.
struct Listeners {
    /// The management and invocation API.
    api: std::net::TcpListener,
    /// The web listener (`Routes { ... }` in config.lua), if configured.
    web: Option<std::net::TcpListener>,
}

/// What the reactors enforce, from the configuration.
fn settings(cfg: &Config) -> Settings {
    let api = ParseLimits {
        max_head: cfg.server.max_head,
        max_body: cfg.server.max_body,
        max_headers: cfg.server.max_headers,
        keep_headers: false,
    };
    Settings {
        max_connections: cfg.server.max_connections,
        idle_timeout: cfg.server.idle_timeout,
        request_timeout: cfg.server.request_timeout,
        send_timeout: cfg.server.send_timeout,
        request_memory: cfg.server.request_memory,
        response_memory: cfg.server.response_memory,
        api,
        // The same, but headers are kept: routes see them in `args.http`.
        web: ParseLimits { keep_headers: true, ..api },
    }
}

/// Runs one worker until `shutdown` is set; `ready` is called once it
/// listens.
fn run_worker(
    cfg: Arc<Config>,
    listeners: Listeners,
    store: Arc<dyn Store>,
    plugins: Arc<PluginHost>,
    shutdown: Arc<AtomicBool>,
    peers: Peers,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let mut reactor = Reactor::new(listeners.api, listeners.web, settings(&cfg))?;
    if cfg.server.metrics {
        let (metrics, me) = peers.metrics();
        reactor.set_metrics(metrics.reactor(me));
    }
    let mut app = App::new(cfg, store, plugins, peers, reactor.waker())?;
    ready();
    reactor.run(&mut app, &shutdown)
}

/// Resolves the configured listen address.
pub fn listen_addr(cfg: &Config) -> io::Result<SocketAddr> {
    (cfg.server.host.as_str(), cfg.server.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the host resolves to no address"))
}

/// Resolves the configured routes address, if routes are served.
pub fn routes_addr(cfg: &Config) -> io::Result<Option<SocketAddr>> {
    let Some(r) = &cfg.routes else { return Ok(None) };
    (r.host.as_str(), r.port)
        .to_socket_addrs()?
        .next()
        .map(Some)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the routes host resolves to no address"))
}

/// Without API tokens the API is open: only loopback clients may reach it,
/// unless the configuration says `Server { insecure = true }`.
pub fn check_exposure(cfg: &Config, addr: SocketAddr) -> io::Result<()> {
    if cfg.auth.enabled() {
        return Ok(());
    }
    if addr.ip().is_loopback() {
        tracing::info!("no API tokens configured: the API is open to local users only (listening on loopback)");
        return Ok(());
    }
    if cfg.server.insecure {
        tracing::warn!(%addr, "no API tokens configured and Server {{ insecure = true }}: anyone who can reach {addr} may create and run actions");
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "refusing to listen on {addr} without API tokens: configure Auth {{ admin = \"...\" }} (see README), \
             listen on 127.0.0.1, or set Server {{ insecure = true }}"
        ),
    ))
}

/// Binds `n` listeners on `addr`. With more than one, all share the port
/// through `SO_REUSEPORT` (port 0 picks one free port for all of them).
pub fn bind_listeners(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(n);
    let mut addr = addr;
    for _ in 0..n.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if n > 1 {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        out.push(listener);
    }
    Ok(out)
}

/// Runs `cfg.server.workers` workers until `shutdown` is set. `ready` is
/// called with the bound addresses (the API's, and the web listener's if
/// configured) once every worker is listening.
pub fn serve(
    cfg: Arc<Config>,
    store: Arc<dyn Store>,
    plugins: Arc<PluginHost>,
    shutdown: Arc<AtomicBool>,
    ready: impl FnOnce(SocketAddr, Option<SocketAddr>) + Send,
) -> io::Result<()> {
    let n = cfg.server.workers.max(1);
    let addr = listen_addr(&cfg)?;
    check_exposure(&cfg, addr)?;
    let api = bind_listeners(addr, n)?;
    let addr = api[0].local_addr()?;
    let (routes, routes_addr) = match routes_addr(&cfg)? {
        Some(raddr) => {
            let ls = bind_listeners(raddr, n)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen for routes on {raddr}: {e}")))?;
            let bound = ls[0].local_addr()?;
            (ls.into_iter().map(Some).collect::<Vec<_>>(), Some(bound))
        }
        None => ((0..n).map(|_| None).collect(), None),
    };
    let listeners: Vec<Listeners> = api.into_iter().zip(routes).map(|(api, web)| Listeners { api, web }).collect();
    let mut peers = Peers::mesh(n);
    // Every store call of every worker timed by operation.
    let store: Arc<dyn Store> = if cfg.server.metrics {
        Arc::new(crate::metrics::MeteredStore::new(store, peers[0].metrics().0.store()))
    } else {
        store
    };
    let mut threads = Vec::new();
    let mut listeners = listeners.into_iter();
    let first = listeners.next().expect("at least one listener");
    let first_peers = peers.remove(0);
    for (i, (listener, peer)) in listeners.zip(peers).enumerate() {
        let (cfg, store, plugins, shutdown) =
            (Arc::clone(&cfg), Arc::clone(&store), Arc::clone(&plugins), Arc::clone(&shutdown));
        threads.push(
            std::thread::Builder::new()
                .name(format!("sl-worker-{}", i + 1))
                .stack_size(crate::sandbox::LUA_THREAD_STACK)
                .spawn(move || run_worker(cfg, listener, store, plugins, shutdown, peer, || {}))?,
        );
    }
    // The first worker runs on a thread of its own too, so that every
    // worker has the same stack size (see `LUA_THREAD_STACK`).
    let result = std::thread::scope(|scope| {
        let first = std::thread::Builder::new()
            .name("sl-worker-0".into())
            .stack_size(crate::sandbox::LUA_THREAD_STACK)
            .spawn_scoped(scope, || {
                run_worker(cfg, first, store, plugins, Arc::clone(&shutdown), first_peers, || ready(addr, routes_addr))
            })?;
        first.join().unwrap_or_else(|_| Err(io::Error::other("the first worker panicked")))
    });
    if result.is_err() {
        shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    for t in threads {
        match t.join() {
            Ok(Err(e)) => tracing::error!("a worker failed: {e}"),
            Err(_) => tracing::error!("a worker panicked"),
            Ok(Ok(())) => {}
        }
    }
    result
}
