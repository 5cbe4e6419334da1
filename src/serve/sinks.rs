//! Sinks: each a task that reads the state's outbox after its delivered
//! position, delivers, and records the new position in the state. A slow
//! or dead sink holds back only itself: the backlog is the outbox, on disk.

use super::engine::{After, Cmd, Handle};
use super::journal::Row;
use super::{Config, Shared, SinkSpec};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running sinks.
pub struct Sinks {
    tasks: Vec<JoinHandle<()>>,
    /// Set at shutdown: deliver up to this outbox row, then stop.
    stop: watch::Sender<Option<(u64, tokio::time::Instant)>>,
}

pub fn start(cfg: &Arc<Config>, engine: Handle, shared: Arc<Shared>) -> Sinks {
    let (stop, _) = watch::channel(None);
    let mut tasks = Vec::new();
    for spec in &cfg.sinks {
        let name = spec.name();
        register(&name);
        let task = Task {
            name,
            spec: spec.clone(),
            cfg: cfg.clone(),
            engine: engine.clone(),
            shared: shared.clone(),
            stop: stop.subscribe(),
            partition: None,
        };
        tasks.push(tokio::spawn(task.run()));
    }
    Sinks { tasks, stop }
}

/// With many machines: a task per sink and partition this process owns,
/// started when the owner claims the partition and stopped when it loses
/// it (delivery is at least once: the next owner goes on from the last
/// recorded position, a write fenced by the partition's epoch).
pub fn start_cluster(
    cfg: &Arc<Config>,
    engine: Handle,
    shared: Arc<Shared>,
    owned: super::Owned,
) -> Sinks {
    let (stop, _) = watch::channel(None);
    let mut tasks = Vec::new();
    if !cfg.sinks.is_empty() {
        for spec in &cfg.sinks {
            register(&spec.name());
        }
        let cfg = cfg.clone();
        let stop_rx = stop.subscribe();
        tasks.push(tokio::spawn(async move {
            let mut changes = owned.changes.subscribe();
            let mut running: std::collections::BTreeMap<(String, u32), (i64, JoinHandle<()>)> =
                std::collections::BTreeMap::new();
            loop {
                let now = owned.get();
                running.retain(|(_, p), (epoch, task)| {
                    let keep = now.get(p) == Some(epoch) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (p, epoch) in &now {
                    for spec in &cfg.sinks {
                        let key = (spec.name(), *p);
                        if running.contains_key(&key) {
                            continue;
                        }
                        let task = Task {
                            name: spec.name(),
                            spec: spec.clone(),
                            cfg: cfg.clone(),
                            engine: engine.clone(),
                            shared: shared.clone(),
                            stop: stop_rx.clone(),
                            partition: Some((*p, *epoch)),
                        };
                        running.insert(key, (*epoch, tokio::spawn(task.run())));
                    }
                }
                let mut stopping = stop_rx.clone();
                let stopped = async move {
                    let _ = stopping.wait_for(|s| s.is_some()).await;
                };
                tokio::select! {
                    r = changes.changed() => if r.is_err() { break },
                    () = stopped => {
                        // Shutdown: the partitions' tasks deliver what is
                        // there within the grace period.
                        let deadline = stop_rx.borrow().map(|(_, t)| t);
                        for (_, (_, t)) in running {
                            if let Some(d) = deadline {
                                let _ = tokio::time::timeout_at(d, t).await;
                            }
                        }
                        return;
                    }
                }
            }
        }));
    }
    Sinks { tasks, stop }
}

/// Every sink metric is there from the start, at zero.
fn register(name: &str) {
    metrics::counter!("nurture_sink_delivered_total", "sink" => name.to_string()).increment(0);
    metrics::counter!("nurture_sink_retried_total", "sink" => name.to_string()).increment(0);
    metrics::counter!("nurture_sink_dead_lettered_total", "sink" => name.to_string()).increment(0);
    metrics::gauge!("nurture_sink_backlog", "sink" => name.to_string()).set(0.0);
}

impl Sinks {
    /// Lets the sinks deliver up to outbox row `last`, for at most `grace`.
    pub async fn finish(self, last: u64, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        self.stop.send_replace(Some((last, deadline)));
        for t in self.tasks {
            if tokio::time::timeout_at(deadline + Duration::from_millis(200), t)
                .await
                .is_err()
            {
                tracing::warn!("a sink did not finish within --shutdown-grace");
            }
        }
    }
}

struct Task {
    name: String,
    spec: SinkSpec,
    cfg: Arc<Config>,
    engine: Handle,
    shared: Arc<Shared>,
    stop: watch::Receiver<Option<(u64, tokio::time::Instant)>>,
    /// With many machines: the partition delivered, and the epoch it is
    /// owned under.
    partition: Option<(u32, i64)>,
}

/// Where a delivery stands.
enum Delivery {
    /// Delivered (a file's new length).
    Done(Option<u64>),
    /// Given up for now (shutdown): not delivered.
    Stopped,
}

impl Task {
    async fn run(mut self) {
        let Some((mut pos, file_len)) = self
            .engine
            .ask(|reply| Cmd::SinkPosition {
                name: self.name.clone(),
                partition: self.partition.map(|(p, _)| p),
                reply,
            })
            .await
        else {
            return;
        };
        let mut out = match Out::open(&self.spec, &self.cfg, file_len) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("sink {}: {e}; it delivers nothing", self.name);
                return;
            }
        };
        let mut changes = self.shared.outbox.subscribe();
        loop {
            let stop = *self.stop.borrow();
            if let Some((last, deadline)) = stop {
                // A partition's outbox has no common last row: it gives
                // what is there by the deadline.
                let caught_up = self.partition.is_none() && pos >= last;
                if caught_up || tokio::time::Instant::now() >= deadline {
                    return;
                }
            }
            changes.borrow_and_update();
            let limit = match &self.spec {
                SinkSpec::Webhook(_) => self.cfg.webhook_batch,
                _ => 1000,
            };
            let Some(rows) = self
                .engine
                .ask(|reply| Cmd::Outbox {
                    after: After::Row(pos),
                    limit,
                    partition: self.partition.map(|(p, _)| p),
                    reply,
                })
                .await
            else {
                return;
            };
            if self.partition.is_none() {
                let backlog = self.shared.outbox.borrow().saturating_sub(pos);
                metrics::gauge!("nurture_sink_backlog", "sink" => self.name.clone())
                    .set(backlog as f64);
            }
            if rows.is_empty() {
                if let Some((_, deadline)) = *self.stop.borrow() {
                    if self.partition.is_some() || tokio::time::Instant::now() >= deadline {
                        return;
                    }
                }
                tokio::select! {
                    r = changes.changed() => if r.is_err() { return },
                    r = self.stop.changed() => if r.is_err() { return },
                }
                continue;
            }
            let last = rows.last().map_or(pos, |r| r.seq);
            let actions = rows.iter().filter(|r| r.action.is_some()).count() as u64;
            match self.deliver(&mut out, &rows).await {
                Delivery::Done(file_len) => {
                    pos = last;
                    metrics::counter!("nurture_sink_delivered_total", "sink" => self.name.clone())
                        .increment(actions);
                    self.engine.tell(Cmd::Delivered {
                        name: self.name.clone(),
                        seq: pos,
                        file_len,
                        partition: self.partition,
                    });
                }
                Delivery::Stopped => return,
            }
        }
    }

    async fn deliver(&mut self, out: &mut Out, rows: &[Row]) -> Delivery {
        match out {
            Out::File(file, path) => {
                // Written and synced before the position is recorded: a
                // restart cuts the file back to the recorded length.
                let mut text = String::new();
                for r in rows {
                    text.push_str(&r.line);
                    text.push('\n');
                }
                loop {
                    let written = file
                        .write_all(text.as_bytes())
                        .and_then(|()| file.sync_data())
                        .and_then(|()| file.metadata().map(|m| m.len()));
                    match written {
                        Ok(len) => return Delivery::Done(Some(len)),
                        Err(e) => {
                            tracing::error!(
                                "sink file:{}: cannot write: {e}; trying again in 1 s",
                                path.display()
                            );
                            if self.pause(Duration::from_secs(1)).await {
                                return Delivery::Stopped;
                            }
                        }
                    }
                }
            }
            Out::Stdout => {
                let mut text = String::new();
                for r in rows {
                    text.push_str(&r.line);
                    text.push('\n');
                }
                let mut stdout = std::io::stdout().lock();
                let _ = stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush());
                Delivery::Done(None)
            }
            Out::Webhook(hook) => self.post(hook, rows).await,
        }
    }

    /// Waits `d`, or less when the shutdown deadline comes first; true
    /// when that deadline has passed.
    async fn pause(&mut self, d: Duration) -> bool {
        let deadline = self.stop.borrow().map(|(_, t)| t);
        match deadline {
            Some(t) => {
                tokio::time::sleep_until(t.min(tokio::time::Instant::now() + d)).await;
                tokio::time::Instant::now() >= t
            }
            None => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => false,
                    _ = self.stop.changed() => {
                        let t = self.stop.borrow().map(|(_, t)| t);
                        t.is_some_and(|t| tokio::time::Instant::now() >= t)
                    }
                }
            }
        }
    }

    /// POSTs one batch until it is delivered or dead-lettered.
    async fn post(&mut self, hook: &Webhook, rows: &[Row]) -> Delivery {
        let ids: Vec<u64> = rows.iter().filter_map(|r| r.action).collect();
        let (first, last) = match (ids.first(), ids.last()) {
            (Some(a), Some(b)) => (*a, *b),
            _ => (rows[0].seq, rows[rows.len() - 1].seq),
        };
        let key = match self.partition {
            Some((p, _)) => format!("{p}:{first}-{last}"),
            None => format!("{first}-{last}"),
        };
        let mut body = String::new();
        for r in rows {
            body.push_str(&r.line);
            body.push('\n');
        }
        let signature = hook.secret.as_ref().map(|s| sign(s, body.as_bytes()));
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut req = hook
                .client
                .post(&hook.url)
                .header("Content-Type", "application/x-ndjson")
                .header("Idempotency-Key", &key)
                .body(body.clone());
            if let Some(sig) = &signature {
                req = req.header("X-Nurture-Signature", format!("sha256={sig}"));
            }
            let (retry, status, response, wait) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(retry_after);
                    if resp.status().is_success() {
                        return Delivery::Done(None);
                    }
                    let text = resp.text().await.unwrap_or_default();
                    let retry = status == 408 || status == 429 || status >= 500;
                    (retry, Some(status), text, after)
                }
                Err(e) => (true, None, e.to_string(), None),
            };
            let last_attempt = self.cfg.webhook_max_attempts.is_some_and(|m| attempt >= m);
            if !retry || last_attempt {
                let why = status.map_or(response.clone(), |s| format!("status {s}"));
                tracing::warn!(
                    "sink {}: batch {key} dead-lettered after {attempt} attempts ({why})",
                    self.name
                );
                if let Err(e) = dead_letter(&self.cfg.dead_letter, status, &response, &key, rows) {
                    tracing::error!("sink {}: cannot write the dead-letter file: {e}", self.name);
                }
                metrics::counter!("nurture_sink_dead_lettered_total", "sink" => self.name.clone())
                    .increment(ids.len() as u64);
                return Delivery::Done(None);
            }
            metrics::counter!("nurture_sink_retried_total", "sink" => self.name.clone())
                .increment(1);
            let backoff = wait.unwrap_or_else(|| backoff(attempt));
            tracing::warn!(
                "sink {}: batch {key} attempt {attempt} failed ({}); again in {} ms",
                self.name,
                status.map_or(response.clone(), |s| format!("status {s}")),
                backoff.as_millis()
            );
            if self.pause(backoff).await {
                return Delivery::Stopped;
            }
        }
    }
}

/// Exponential backoff with jitter: 0.5 s doubling up to 60 s, each wait
/// drawn between half and the whole of it.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(7))
        .min(60_000);
    Duration::from_millis(base / 2 + fastrand::u64(0..=base / 2))
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    if let Ok(s) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(s.min(3600)));
    }
    let t = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let ms = t.timestamp_millis() - super::wall_ms();
    Some(Duration::from_millis(ms.clamp(0, 3_600_000) as u64))
}

/// HMAC-SHA256 of the body, in hex.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .expect("HMAC takes a key of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The dead-letter file: the state's path with `.dead-letter.jsonl`.
pub fn dead_letter_path(state: &std::path::Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".dead-letter.jsonl");
    PathBuf::from(p)
}

fn dead_letter(
    path: &std::path::Path,
    status: Option<u16>,
    response: &str,
    key: &str,
    rows: &[Row],
) -> std::io::Result<()> {
    let mut cut = response.len().min(1024);
    while !response.is_char_boundary(cut) {
        cut -= 1;
    }
    let actions: Vec<serde_json::Value> = rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.line).ok())
        .collect();
    let line = serde_json::json!({
        "status": status,
        "response": &response[..cut],
        "idempotency_key": key,
        "actions": actions,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{line}")?;
    f.sync_data()
}

/// Where a sink writes.
enum Out {
    File(std::fs::File, PathBuf),
    Stdout,
    Webhook(Webhook),
}

struct Webhook {
    url: String,
    client: reqwest::Client,
    secret: Option<Vec<u8>>,
}

impl Out {
    fn open(spec: &SinkSpec, cfg: &Config, recorded: Option<u64>) -> Result<Out, String> {
        match spec {
            SinkSpec::Stdout => Ok(Out::Stdout),
            SinkSpec::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
                let len = file
                    .metadata()
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
                    .len();
                // Written past the recorded position by a process that died
                // before recording it: cut back, written again.
                if let Some(r) = recorded.filter(|r| len > *r) {
                    file.set_len(r)
                        .map_err(|e| format!("cannot cut `{}` back: {e}", path.display()))?;
                }
                Ok(Out::File(file, path.clone()))
            }
            SinkSpec::Webhook(url) => {
                let client = reqwest::Client::builder()
                    .timeout(cfg.webhook_timeout)
                    .build()
                    .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
                Ok(Out::Webhook(Webhook {
                    url: url.clone(),
                    client,
                    secret: cfg.webhook_secret.clone(),
                }))
            }
        }
    }
}
