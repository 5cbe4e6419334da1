//! `nurture serve`: the live service (LANGUAGE.md section 11), a layer on
//! the runtime's front door. The engine runs on a thread of its own
//! (`engine.rs`), the only owner of the [`Interpreter`] and of the state's
//! database: it journals accepted events (`journal.rs`), runs them, keeps
//! what they emit in the state's outbox and takes checkpoints. The HTTP API
//! (`http.rs`, axum on tokio) and the sinks (`sinks.rs`) talk to it through
//! a channel of commands; none of them touches the engine's state.

pub(crate) mod cluster;
mod engine;
mod http;
pub mod journal;
mod posted;
mod sinks;

pub use sinks::{dead_letter_path, sign};

use crate::runtime::state::ProgramRecord;
use crate::runtime::{Compiled, Interpreter, Millis};
use crate::source::SourceMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A program as the service runs it: compiled, its record (what a state
/// keeps of it) and its sources (for the report's locations).
pub struct Loaded {
    pub compiled: Arc<Compiled>,
    pub record: ProgramRecord,
    pub sources: SourceMap,
}

/// Reads and checks the program again (SIGHUP).
pub type Loader = Box<dyn Fn() -> Result<Loaded, String> + Send>;

/// Where the engine's clock comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockKind {
    /// The server's clock (UTC): events stamped when accepted, timers fired
    /// when it reaches them.
    Wall,
    /// Moved only by posted `at` values and `POST /v1/clock` (tests, replays).
    Virtual,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// A sink actions are delivered to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkSpec {
    File(PathBuf),
    Stdout,
    Webhook(String),
}

impl SinkSpec {
    /// `file:PATH`, `stdout` or `webhook:URL`.
    pub fn parse(text: &str) -> Result<SinkSpec, String> {
        if text == "stdout" {
            Ok(SinkSpec::Stdout)
        } else if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
            Ok(SinkSpec::File(PathBuf::from(path)))
        } else if let Some(url) = text.strip_prefix("webhook:") {
            if url.starts_with("http://") || url.starts_with("https://") {
                Ok(SinkSpec::Webhook(url.to_string()))
            } else {
                Err(format!(
                    "--sink `{text}`: a webhook's URL starts with http:// or https://"
                ))
            }
        } else {
            Err(format!(
                "--sink `{text}` is none of `file:PATH`, `stdout`, `webhook:URL`"
            ))
        }
    }

    /// The sink's name in metrics, logs and the state.
    pub fn name(&self) -> String {
        match self {
            SinkSpec::File(p) => format!("file:{}", p.display()),
            SinkSpec::Stdout => "stdout".into(),
            SinkSpec::Webhook(u) => format!("webhook:{u}"),
        }
    }
}

/// Everything `nurture serve` was asked for.
pub struct Config {
    /// The state file (or, with many machines, the store's URL for
    /// messages).
    pub state: PathBuf,
    /// Where webhook batches given up go: the state's path with
    /// `.dead-letter.jsonl`, or with many machines
    /// `nurture.dead-letter.jsonl` in the working directory.
    pub dead_letter: PathBuf,
    /// With many machines: how long a silent process keeps its partitions.
    pub failover: Duration,
    pub listen: SocketAddr,
    /// Bearer tokens; none: loopback only.
    pub tokens: Vec<String>,
    pub sinks: Vec<SinkSpec>,
    pub clock: ClockKind,
    pub trace: bool,
    pub max_body: usize,
    pub read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub webhook_batch: usize,
    pub webhook_secret: Option<Vec<u8>>,
    pub webhook_max_attempts: Option<u32>,
    pub webhook_timeout: Duration,
    pub log_format: LogFormat,
    pub allow_clock_jump: bool,
    /// `--contacts` lines, loaded at start.
    pub contacts: Vec<String>,
}

/// What the command line opened: the engine's state, ready to go on.
pub struct Start {
    pub it: Interpreter,
    pub conn: rusqlite::Connection,
    pub loaded: Loaded,
    pub loader: Loader,
    /// The state must be written whole before anything runs (a new state,
    /// or one moved to a changed program's places).
    pub write_whole: bool,
}

/// What a service runs on: one state file, or a cluster's PostgreSQL.
pub enum Backend {
    Single(Box<Start>),
    Cluster {
        url: String,
        meta: cluster::Meta,
        loaded: Box<Loaded>,
    },
}

/// The partitions this process owns, with their epochs, and a counter
/// moved at each change (the sinks follow it).
#[derive(Clone)]
pub struct Owned {
    pub map: Arc<std::sync::Mutex<std::collections::BTreeMap<u32, i64>>>,
    pub changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Owned {
    fn default() -> Owned {
        Owned {
            map: Arc::default(),
            changes: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Owned {
    /// Records what the owner holds now.
    pub fn set(&self, now: std::collections::BTreeMap<u32, i64>) {
        if let Ok(mut m) = self.map.lock() {
            if *m != now {
                *m = now;
                self.changes.send_modify(|n| *n += 1);
            }
        }
    }

    pub fn get(&self) -> std::collections::BTreeMap<u32, i64> {
        self.map.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// What the HTTP side and the sinks share with the engine.
pub(crate) struct Shared {
    /// Recovery finished: events are accepted.
    pub ready: AtomicBool,
    /// Shutting down: new requests get 503.
    pub stopping: AtomicBool,
    /// The last outbox row written (sinks and pulls wait on it).
    pub outbox: tokio::sync::watch::Sender<u64>,
    /// The engine stopped by itself (the state could not be written).
    pub failed: AtomicBool,
    pub failed_notify: tokio::sync::Notify,
    /// With many machines, the partition count.
    pub partitions: Option<u32>,
}

impl Shared {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.stopping.load(Ordering::Acquire)
    }
}

/// The wall clock, in milliseconds since the epoch.
pub(crate) fn wall_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// A size: bytes, or `KiB`/`MiB`.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let (n, scale) = if let Some(n) = t.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = t.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (t.strip_suffix('B').unwrap_or(t), 1)
    };
    n.trim().parse::<usize>().ok()?.checked_mul(scale)
}

/// A duration as the language writes it (`30s`, `2m`, `1h 30m`), or a
/// number of milliseconds with `ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    if let Some(ms) = text.trim().strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    crate::runtime::parse_duration(text)
        .filter(|s| *s >= 0)
        .map(|s| Duration::from_secs(s as u64))
}

/// One secret or token a line, blanks around them and blank lines ignored.
pub fn read_secrets(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if lines.is_empty() {
        return Err(format!("`{}` holds no token or secret", path.display()));
    }
    Ok(lines)
}

/// Runs the service until SIGTERM or SIGINT (exit 0), or until it cannot
/// go on (exit 2).
pub fn run(cfg: Config, backend: Backend) -> ExitCode {
    init_logs(cfg.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nurture-serve")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the service: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(serve(cfg, backend))
}

fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

async fn serve(cfg: Config, backend: Backend) -> ExitCode {
    let metrics = match http::install_metrics() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("cannot start the metrics: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {}: {e}", cfg.listen);
            return ExitCode::from(2);
        }
    };
    let addr = listener.local_addr().unwrap_or(cfg.listen);
    let (outbox_tx, _) = tokio::sync::watch::channel(0u64);
    let shared = Arc::new(Shared {
        ready: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        outbox: outbox_tx,
        failed: AtomicBool::new(false),
        failed_notify: tokio::sync::Notify::new(),
        partitions: match &backend {
            Backend::Single(_) => None,
            Backend::Cluster { meta, .. } => Some(meta.partitions),
        },
    });
    let cfg = Arc::new(cfg);
    let spawned = match backend {
        Backend::Single(start) => {
            engine::spawn(cfg.clone(), *start, shared.clone()).map(|(e, t)| {
                let s = sinks::start(&cfg, e.clone(), shared.clone());
                (e, t, s)
            })
        }
        Backend::Cluster { url, meta, loaded } => {
            cluster::spawn(&cfg, url, meta, *loaded, shared.clone())
        }
    };
    let (engine, engine_thread, sinks) = match spawned {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("cannot start the engine: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg.tokens.is_empty() {
        tracing::info!("listening on http://{addr} (loopback only: no --token-file)");
    } else {
        tracing::info!(
            "listening on http://{addr} ({} bearer tokens)",
            cfg.tokens.len()
        );
    }
    let app = http::router(cfg.clone(), engine.clone(), shared.clone(), metrics);
    let signal_shared = shared.clone();
    let reload_engine = engine.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            reload_engine.reload().await;
        }
    });
    let shutdown = async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = term => tracing::info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
            _ = engine_failed(&signal_shared) => {}
        }
        signal_shared.stopping.store(true, Ordering::Release);
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Err(e) = served {
        tracing::error!("the HTTP server stopped: {e}");
    }
    // Requests in flight are answered; now a last checkpoint, then the
    // sinks get up to the grace period to deliver what is left.
    let failed = shared.failed.load(Ordering::Acquire);
    let last = engine.checkpoint().await;
    sinks.finish(last, cfg.shutdown_grace).await;
    engine.stop().await;
    let _ = tokio::task::spawn_blocking(move || engine_thread.join()).await;
    if failed {
        tracing::error!("stopped: the engine could not go on");
        return ExitCode::from(2);
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Resolves when the engine has stopped by itself (a disk error): the
/// service then shuts down as on SIGTERM, and exits 2.
async fn engine_failed(shared: &Shared) {
    shared.failed_notify.notified().await;
}
