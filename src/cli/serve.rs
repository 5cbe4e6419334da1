//! `nurture serve PATH --state DB` and `nurture journal --state DB`: the
//! command line's side of the live service (its files and flags); the
//! service itself is `crate::serve`.

use crate::runtime::Interpreter;
use crate::serve::{Backend, ClockKind, Config, Loaded, LogFormat, SinkSpec, Start};
use crate::source::load_sources;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A `.flow` file, or a directory whose `*.flow` files form one program.
    /// SIGHUP reads it again (section 7's program change rule: a refused
    /// program leaves the running one in place).
    pub path: PathBuf,
    /// The state: an SQLite file (created if missing) holding the contacts
    /// and journeys, the journal of accepted events, the outbox of emitted
    /// actions and each sink's delivered position.
    #[arg(
        long,
        value_name = "DB",
        required_unless_present = "store",
        conflicts_with = "store"
    )]
    pub state: Option<PathBuf>,
    /// Many machines: the PostgreSQL database the cluster's processes
    /// share (`postgres://USER@HOST/DB`), instead of --state.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// With --store: create the cluster's schema (once) and exit.
    #[arg(long, requires = "store")]
    pub init: bool,
    /// With --init: the number of partitions, which never changes.
    #[arg(long, value_name = "P", default_value_t = 64)]
    pub partitions: u32,
    /// With --store: how long a process may be silent (dead or paused)
    /// before the others take its partitions.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub failover: String,
    /// The address to listen on. Without --token-file only loopback
    /// addresses are allowed.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Bearer tokens, one a line: every endpoint but /healthz and /readyz
    /// then needs `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Where actions go (repeatable): `file:PATH` (JSON Lines, exactly
    /// once), `stdout`, or `webhook:URL` (batches POSTed with retries).
    /// `GET /v1/actions` serves them too, whatever the sinks.
    #[arg(long = "sink", value_name = "SINK")]
    pub sinks: Vec<String>,
    /// `wall`: events stamped with the server's clock, timers fired when it
    /// reaches them. `virtual`: the clock moves only with posted `at` values
    /// and `POST /v1/clock` (tests and replays).
    #[arg(long, value_enum, default_value_t = ClockKind::Wall)]
    pub clock: ClockKind,
    /// Contacts to load at start, as JSON Lines (as `nurture run`).
    #[arg(long, value_name = "FILE")]
    pub contacts: Option<PathBuf>,
    /// Add the lifecycle records to every sink (without an `id`).
    #[arg(long)]
    pub trace: bool,
    /// The largest request body: bytes, or with `KiB`/`MiB` (413 beyond).
    #[arg(long, value_name = "SIZE", default_value = "1MiB")]
    pub max_body: String,
    /// A request whose body takes longer than this to arrive is cut (408).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub read_timeout: String,
    /// At SIGTERM or SIGINT, how long the sinks may go on delivering.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub shutdown_grace: String,
    /// Actions per webhook request, at most.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub webhook_batch: usize,
    /// The secret webhook bodies are signed with (`X-Nurture-Signature:
    /// sha256=HEX`, HMAC-SHA256): the file's first line.
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Give a batch up (to the dead-letter file) after this many attempts;
    /// by default retryable failures are retried forever.
    #[arg(long, value_name = "N")]
    pub webhook_max_attempts: Option<u32>,
    /// How long one webhook request may take before it counts as failed.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub webhook_timeout: String,
    /// Log lines for people, or one JSON object a line.
    #[arg(long, value_enum, default_value_t)]
    pub log_format: LogFormat,
    /// With --clock virtual, accept an event more than 366 days after the
    /// clock.
    #[arg(long)]
    pub allow_clock_jump: bool,
}

#[derive(clap::Args, Debug)]
pub struct JournalArgs {
    /// The state a `nurture serve` wrote.
    #[arg(
        long,
        value_name = "DB",
        required_unless_present = "store",
        conflicts_with = "store"
    )]
    pub state: Option<PathBuf>,
    /// A cluster's PostgreSQL database: its inboxes, merged in time order.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// With --store: one partition's inbox only.
    #[arg(long, value_name = "P", requires = "store")]
    pub partition: Option<u32>,
}

fn usage(msg: &str) -> ExitCode {
    say!("error: {msg}");
    ExitCode::from(2)
}

/// Reads, checks and compiles the program at `path`.
fn load(path: &Path) -> Result<Loaded, String> {
    let sources = load_sources(path)?;
    let analysis = crate::pipeline::analyse(&sources);
    if let Some(d) = analysis.diagnostics.iter().find(|d| d.is_error()) {
        let n = analysis.diagnostics.iter().filter(|d| d.is_error()).count();
        let f = sources.file(d.span.file);
        let (line, col) = f.line_col(d.span.start as usize);
        let file = &f.name;
        return Err(format!(
            "`{}` has {n} errors; the first: {file}:{line}:{col}: {}",
            path.display(),
            d.message
        ));
    }
    let compiled = Arc::new(crate::runtime::Compiled::of(
        &analysis.program,
        &analysis.checked.schema,
    ));
    let record = crate::pipeline::program_record(&analysis.program, &sources, &compiled);
    Ok(Loaded {
        compiled,
        record,
        sources,
    })
}

pub fn run(args: &ServeArgs) -> ExitCode {
    if let (Some(url), true) = (&args.store, args.init) {
        if args.partitions == 0 {
            return usage("--partitions must be at least 1");
        }
        return match crate::serve::cluster::init(url, args.partitions) {
            Ok(true) => {
                say!(
                    "created the cluster's schema in {} ({} partitions)",
                    crate::serve::cluster::shown(url),
                    args.partitions
                );
                ExitCode::SUCCESS
            }
            Ok(false) => {
                say!(
                    "{} already holds a cluster of {} partitions: nothing to do",
                    crate::serve::cluster::shown(url),
                    args.partitions
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                say!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let listen: SocketAddr = match args.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            return usage(&format!(
                "--listen `{}` is not an address such as 127.0.0.1:8080",
                args.listen
            ))
        }
    };
    let tokens = match &args.token_file {
        Some(f) => match crate::serve::read_secrets(f) {
            Ok(t) => t,
            Err(e) => return usage(&format!("--token-file: {e}")),
        },
        None => Vec::new(),
    };
    if tokens.is_empty() && !listen.ip().is_loopback() {
        return usage(&format!(
            "--listen {listen} is not a loopback address: give --token-file so requests need a token"
        ));
    }
    let mut sinks = Vec::new();
    for s in &args.sinks {
        match SinkSpec::parse(s) {
            Ok(s) if sinks.contains(&s) => {
                return usage(&format!("--sink `{}` is given twice", s.name()))
            }
            Ok(s) => sinks.push(s),
            Err(e) => return usage(&e),
        }
    }
    let size = |flag: &str, v: &str| {
        crate::serve::parse_size(v)
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{flag} `{v}` is not a size such as 1MiB, 64KiB or 5000"))
    };
    let duration = |flag: &str, v: &str| {
        crate::serve::parse_duration(v)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("{flag} `{v}` is not a duration such as 30s or 2m"))
    };
    let parsed = (|| -> Result<_, String> {
        Ok((
            size("--max-body", &args.max_body)?,
            duration("--read-timeout", &args.read_timeout)?,
            duration("--shutdown-grace", &args.shutdown_grace)?,
            duration("--webhook-timeout", &args.webhook_timeout)?,
            duration("--failover", &args.failover)?,
        ))
    })();
    let (max_body, read_timeout, shutdown_grace, webhook_timeout, failover) = match parsed {
        Ok(p) => p,
        Err(e) => return usage(&e),
    };
    if args.webhook_batch == 0 {
        return usage("--webhook-batch must be at least 1");
    }
    if args.webhook_max_attempts == Some(0) {
        return usage("--webhook-max-attempts must be at least 1");
    }
    let webhook_secret = match &args.webhook_secret_file {
        Some(f) => match crate::serve::read_secrets(f) {
            Ok(s) => Some(s[0].clone().into_bytes()),
            Err(e) => return usage(&format!("--webhook-secret-file: {e}")),
        },
        None => None,
    };
    let contacts = match &args.contacts {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => t
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from)
                .collect(),
            Err(e) => return usage(&format!("cannot read `{}`: {e}", p.display())),
        },
        None => Vec::new(),
    };
    let loaded = match load(&args.path) {
        Ok(l) => l,
        Err(e) => {
            say!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let backend_state = match (&args.store, &args.state) {
        (Some(url), _) => {
            if sinks.iter().any(|s| matches!(s, SinkSpec::File(_))) {
                return usage(
                    "--sink file: with --store: a file is one machine's; use webhook: or stdout, or pull `GET /v1/actions?partition=P` (docs/scaling.md)",
                );
            }
            if !contacts.is_empty() {
                return usage(
                    "--contacts with --store: load contacts with `contact_created` events",
                );
            }
            match cluster_meta(url, &loaded) {
                Ok(meta) => Err((url.clone(), meta)),
                Err((code, e)) => {
                    say!("error: {e}");
                    return ExitCode::from(code);
                }
            }
        }
        (None, Some(state)) => match open_state(state, &loaded, args.trace) {
            Ok(s) => Ok(s),
            Err(code) => return code,
        },
        (None, None) => return usage("give --state DB or --store URL"),
    };
    let path = args.path.clone();
    let cfg = Config {
        state: args.state.clone().unwrap_or_else(|| {
            PathBuf::from(
                args.store
                    .as_deref()
                    .map(crate::serve::cluster::shown)
                    .unwrap_or_default(),
            )
        }),
        failover,
        dead_letter: match &args.state {
            Some(s) => crate::serve::dead_letter_path(s),
            None => PathBuf::from("nurture.dead-letter.jsonl"),
        },
        listen,
        tokens,
        sinks,
        clock: args.clock,
        trace: args.trace,
        max_body,
        read_timeout,
        shutdown_grace,
        webhook_batch: args.webhook_batch,
        webhook_secret,
        webhook_max_attempts: args.webhook_max_attempts,
        webhook_timeout,
        log_format: args.log_format,
        allow_clock_jump: args.allow_clock_jump,
        contacts,
    };
    let backend = match backend_state {
        Ok((it, conn, write_whole)) => Backend::Single(Box::new(Start {
            it,
            conn,
            loaded,
            loader: Box::new(move || load(&path)),
            write_whole,
        })),
        Err((url, meta)) => Backend::Cluster {
            url,
            meta,
            loaded: Box::new(loaded),
        },
    };
    crate::serve::run(cfg, backend)
}

/// Opens a state file for the service: the program checked against it.
fn open_state(
    path: &Path,
    loaded: &Loaded,
    trace: bool,
) -> Result<(Interpreter, rusqlite::Connection, bool), ExitCode> {
    let mut state = match super::state::StateFile::open(path, &loaded.record, &loaded.compiled) {
        Ok(s) => s,
        Err(r) => {
            say!("error: {}", r.message);
            return Err(ExitCode::from(if r.program_changed { 1 } else { 2 }));
        }
    };
    let write_whole = state.fresh || state.migrated;
    let it = match state.snapshot.take() {
        Some(snap) => match Interpreter::restore(loaded.compiled.clone(), trace, snap) {
            Ok(mut it) => {
                it.program_change_exits(&std::mem::take(&mut state.change_exits));
                it
            }
            Err(e) => {
                say!("error: the state `{}` cannot be run: {e}", path.display());
                return Err(ExitCode::from(2));
            }
        },
        None => Interpreter::new(loaded.compiled.clone(), trace),
    };
    Ok((it, state.into_connection(), write_whole))
}

/// A cluster's meta rows, the program checked against the cluster's.
fn cluster_meta(url: &str, loaded: &Loaded) -> Result<crate::serve::cluster::Meta, (u8, String)> {
    use crate::serve::cluster;
    let mut c = cluster::connect(url).map_err(|e| (2, e))?;
    let meta = cluster::read_meta(&mut c)
        .map_err(|e| (2, e))?
        .ok_or_else(|| {
            (
                2,
                format!(
                    "{} holds no cluster: make one first with `nurture serve PATH --store URL --init --partitions P`",
                    cluster::shown(url)
                ),
            )
        })?;
    cluster::check_program(&mut c, &loaded.record).map_err(|e| (1, e))?;
    Ok(meta)
}

pub fn journal(args: &JournalArgs) -> ExitCode {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match (&args.store, &args.state) {
        (Some(url), _) => crate::serve::cluster::write_journal(url, args.partition, &mut out),
        (None, Some(state)) => crate::serve::journal::write_out(state, &mut out),
        (None, None) => Err("give --state DB or --store URL".into()),
    };
    match written {
        Ok(_) => {
            use std::io::Write;
            if out.flush().is_err() {
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            say!("error: {e}");
            ExitCode::from(2)
        }
    }
}
