//! `nurture serve` over real HTTP on loopback: the binary started as a
//! process, spoken to with an HTTP client, stopped by pid.

use crate::helpers::{bin, root, stderr, stdout, with_schema};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `nurture serve`.
pub struct Server {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A free port on loopback (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts `nurture serve ARGS` (with `--listen 127.0.0.1:0` unless
    /// ARGS has `--listen`) and waits until it is ready.
    pub fn start(args: &[&str]) -> Server {
        let mut cmd = bin();
        cmd.arg("serve").args(args);
        // A cluster's partitions snapshot often: new owners start from them.
        cmd.env("NURTURE_SNAPSHOT_MS", "300");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nurture serve starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        let kept = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split(' ').next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                let mut l = kept.lock().expect("log");
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nurture serve did not start:\n{}", log.lock().expect("log"));
            }
        };
        let server = Server { child, addr, log };
        server.wait_ready();
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if self.get("/readyz").0 == 200 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not ready after 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        request(&self.url(path), None, None, None)
    }

    pub fn post_json(&self, path: &str, body: &str) -> (u16, String) {
        request(&self.url(path), Some("application/json"), Some(body), None)
    }

    pub fn post_lines(&self, path: &str, body: &str) -> (u16, String) {
        request(
            &self.url(path),
            Some("application/x-ndjson"),
            Some(body),
            None,
        )
    }

    /// The actions and records emitted so far (`GET /v1/actions`).
    pub fn actions(&self) -> String {
        let (status, body) = self.get("/v1/actions?after=0&limit=10000");
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        signal(&self.child, "TERM");
        wait_exit(&mut self.child, Duration::from_secs(30))
    }

    pub fn signal(&self, name: &str) {
        signal(&self.child, name);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(ok.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the process did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request: (status, body); status 0 when no answer came.
pub fn request(
    url: &str,
    content_type: Option<&str>,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let agent = agent();
    let result = match body {
        Some(body) => {
            let mut req = agent.post(url);
            if let Some(ct) = content_type {
                req = req.header("Content-Type", ct);
            }
            if let Some(t) = token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            req.send(body.as_bytes())
        }
        None => {
            let mut req = agent.get(url);
            if let Some(t) = token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            req.call()
        }
    };
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .unwrap_or_default();
            (status, text)
        }
        Err(_) => (0, String::new()),
    }
}

/// A client's records: `contacts` contacts of its own created, then
/// `opens` opens of them at random; each with a client event id (the
/// record's text without its braces, and the id).
pub fn client_records(
    client: u64,
    contacts: usize,
    opens: usize,
    rng: &mut fastrand::Rng,
) -> Vec<(String, String)> {
    let mut records = Vec::new();
    for k in 0..contacts {
        records.push((
            format!("e{client}-c{k}"),
            format!(r#""contact":"c{client}-{k}","type":"contact_created","attributes":{{"email":"c{client}-{k}@example.com","country":"IT","opted_in":true}}"#),
        ));
    }
    for n in 0..opens {
        let k = rng.usize(0..contacts);
        records.push((
            format!("e{client}-{n}"),
            format!(r#""contact":"c{client}-{k}","type":"email_opened","campaign":"n{n}""#),
        ));
    }
    records
}

/// The lines with each action's `"id"` taken out.
fn without_ids(text: &str) -> String {
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
            }
            format!("{v}\n")
        })
        .collect()
}

/// The same lines, each parsed and printed again (key order kept by
/// serde_json's map: sorted), for comparing output of two commands.
fn normalized(text: &str) -> String {
    without_ids(text)
}

// ------------------------------------------------------------------ the journal criterion, virtual clock

/// Every golden example, its events posted in batches of random sizes
/// (seeded) to `serve --clock virtual --trace`, then drained: the same
/// records as `nurture run --drain --trace` (ids aside).
#[test]
fn every_golden_example_replayed_through_serve_gives_the_same_records() {
    let ex = root().join("examples");
    let mut names: Vec<String> = std::fs::read_dir(ex.join("events"))
        .expect("events")
        .filter_map(|e| e.ok())
        .map(|e| {
            e.path()
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    let mut rng = fastrand::Rng::with_seed(20261204);
    for name in names {
        let dir = tempfile::tempdir().expect("tmp");
        let state = dir.path().join("s.db");
        let events = std::fs::read_to_string(ex.join("events").join(format!("{name}.jsonl")))
            .expect("events");
        let expected = std::fs::read_to_string(ex.join("expected").join(format!("{name}.jsonl")))
            .expect("expected");
        let server = Server::start(&[
            ex.to_str().expect("utf-8"),
            "--state",
            state.to_str().expect("utf-8"),
            "--clock",
            "virtual",
            "--trace",
        ]);
        let lines: Vec<&str> = events.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut i = 0;
        while i < lines.len() {
            let n = rng.usize(1..=7).min(lines.len() - i);
            let batch = &lines[i..i + n];
            let (status, body) = if n == 1 && rng.bool() {
                server.post_json("/v1/events", batch[0])
            } else {
                server.post_lines("/v1/events", &(batch.join("\n") + "\n"))
            };
            assert_eq!(status, 202, "{name}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(v["accepted"], n, "{body}");
            i += n;
        }
        let (status, body) = server.post_json("/v1/clock", r#"{"drain": true}"#);
        assert_eq!(status, 200, "{body}");
        let got = server.actions();
        assert_eq!(
            without_ids(&got),
            without_ids(&expected),
            "{name}: the service's records differ from the golden output"
        );
        // Every action carries its id, 1-based in emission order.
        let ids: Vec<u64> = got
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["id"].as_u64())
            .collect();
        assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{name}");
    }
}

// ------------------------------------------------------------------ requests, one by one

const PROGRAM: &str = r#"
workflow engaged {
  when email_opened
  tag "opened"
  wait 2s
  tag "two seconds later"
}
"#;

fn program_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let flow = dir.path().join("p.flow");
    std::fs::write(&flow, with_schema(PROGRAM)).expect("write");
    let state = dir.path().join("s.db");
    (dir, flow, state)
}

fn created(contact: &str, at: &str) -> String {
    format!(
        r#"{{"at":"{at}","contact":"{contact}","type":"contact_created","attributes":{{"email":"{contact}@example.com","country":"IT","opted_in":true}}}}"#
    )
}

fn opened(contact: &str, at: &str) -> String {
    format!(r#"{{"at":"{at}","contact":"{contact}","type":"email_opened","campaign":"c"}}"#)
}

#[test]
fn a_batch_with_a_bad_record_is_refused_whole_and_nothing_is_journaled() {
    let (_dir, flow, state) = program_dir();
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let server = Server::start(&[&s(&flow), "--state", &s(&state), "--clock", "virtual"]);
    let batch = [
        created("a", "2026-03-01T10:00:00Z"),
        r#"{"at":"2026-03-01T10:00:01Z","contact":"a","type":"email_opend","campaign":"c"}"#
            .to_string(),
        opened("nobody", "2026-03-01T10:00:02Z"),
        "{not json".to_string(),
    ]
    .join("\n");
    let (status, body) = server.post_lines("/v1/events", &batch);
    assert_eq!(status, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["error"]["code"], "nurture::input::bad-record", "{body}");
    let records = v["error"]["records"].as_array().expect("records");
    // Malformed JSON is found before anything else is looked at.
    assert_eq!(records.len(), 1, "{body}");
    assert_eq!(records[0]["index"], 3, "{body}");
    let batch = [
        created("a", "2026-03-01T10:00:00Z"),
        r#"{"at":"2026-03-01T10:00:01Z","contact":"a","type":"email_opend","campaign":"c"}"#
            .to_string(),
        opened("nobody", "2026-03-01T10:00:02Z"),
        opened("a", "2026-03-01T09:00:00Z"),
    ]
    .join("\n");
    let (status, body) = server.post_lines("/v1/events", &batch);
    assert_eq!(status, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let records = v["error"]["records"].as_array().expect("records");
    let fields: Vec<(u64, String)> = records
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().expect("index"),
                r["field"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        vec![(1, "type".into()), (2, "contact".into()), (3, "at".into())],
        "{body}"
    );
    assert!(
        records[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("did you mean `email_opened`"),
        "{body}"
    );
    // Nothing of it was journaled or run.
    let (status, body) = server.get("/v1/contacts/a");
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.post_json("/v1/events", &created("a", "2026-03-01T10:00:00Z"));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, r#"{"accepted":1,"at":["2026-03-01T10:00:00Z"]}"#);
    let (status, body) = server.get("/v1/contacts/a");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["contact"], "a");
    assert_eq!(v["attributes"]["email"], "a@example.com");
    let mut server = server;
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let j = bin()
        .args(["journal", "--state", state.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert_eq!(j.status.code(), Some(0), "{}", stderr(&j));
    assert_eq!(stdout(&j).lines().count(), 1, "{}", stdout(&j));
}

#[test]
fn client_event_ids_are_accepted_once() {
    let (_dir, flow, state) = program_dir();
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let mut server = Server::start(&[&s(&flow), "--state", &s(&state), "--clock", "virtual"]);
    let c = r#"{"id":"e1","at":"2026-03-01T10:00:00Z","contact":"a","type":"contact_created","attributes":{"email":"a@x.io","country":"IT","opted_in":true}}"#;
    let o = r#"{"id":"e2","at":"2026-03-01T10:00:05Z","contact":"a","type":"email_opened","campaign":"c"}"#;
    assert_eq!(
        server.post_lines("/v1/events", &format!("{c}\n{o}\n")).0,
        202
    );
    // A client that retries, the whole batch and then one of it.
    let (status, body) = server.post_lines("/v1/events", &format!("{c}\n{o}\n"));
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body,
        r#"{"accepted":2,"at":["2026-03-01T10:00:00Z","2026-03-01T10:00:05Z"]}"#
    );
    assert_eq!(server.post_json("/v1/events", o).0, 202);
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let j = bin()
        .args(["journal", "--state", state.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert_eq!(stdout(&j).lines().count(), 2, "{}", stdout(&j));
}

#[test]
fn the_virtual_clock_moves_only_when_asked_and_never_back() {
    let (_dir, flow, state) = program_dir();
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let server = Server::start(&[&s(&flow), "--state", &s(&state), "--clock", "virtual"]);
    let batch = format!(
        "{}\n{}\n",
        created("a", "2026-03-01T10:00:00Z"),
        opened("a", "2026-03-01T10:00:00Z")
    );
    assert_eq!(server.post_lines("/v1/events", &batch).0, 202);
    // `at` is required with a virtual clock.
    let (status, body) = server.post_json(
        "/v1/events",
        r#"{"contact":"a","type":"email_opened","campaign":"c"}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(r#""field":"at""#), "{body}");
    let before = server.actions();
    assert_eq!(before.lines().count(), 1, "{before}");
    let (status, body) = server.post_json("/v1/clock", r#"{"until":"2026-03-01T10:00:01Z"}"#);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"clock":"2026-03-01T10:00:01Z"}"#)
    );
    assert_eq!(server.actions().lines().count(), 1);
    let (status, body) = server.post_json("/v1/clock", r#"{"until":"2026-03-01T10:00:02Z"}"#);
    assert_eq!(status, 200, "{body}");
    let after = server.actions();
    assert_eq!(after.lines().count(), 2, "{after}");
    assert!(
        after
            .lines()
            .nth(1)
            .expect("a line")
            .contains(r#""at":"2026-03-01T10:00:02Z""#),
        "the timer carries its due time: {after}"
    );
    // An earlier `until` changes nothing; an earlier event is refused.
    let (status, body) = server.post_json("/v1/clock", r#"{"until":"2026-01-01T00:00:00Z"}"#);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"clock":"2026-03-01T10:00:02Z"}"#)
    );
    let (status, body) = server.post_json("/v1/events", &opened("a", "2026-03-01T10:00:01Z"));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("time goes backwards"), "{body}");
    // Pulls after an id, and an empty answer after waiting.
    let (status, body) = server.get("/v1/actions?after=1");
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), 1, "{body}");
    let started = Instant::now();
    let (status, body) = server.get("/v1/actions?after=2&wait=0.3");
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn tokens_guard_every_endpoint_but_health_and_readiness() {
    let (dir, flow, state) = program_dir();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "\n  s3cret-one  \n\nsecond-token\n").expect("write");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let server = Server::start(&[
        &s(&flow),
        "--state",
        &s(&state),
        "--token-file",
        &s(&tokens),
    ]);
    let url = server.url("/v1/state");
    let missing = request(&url, None, None, None);
    let wrong = request(&url, None, None, Some("s3cret-on"));
    let longer = request(&url, None, None, Some("s3cret-one-and-more"));
    assert_eq!(missing.0, 401);
    assert_eq!(missing, wrong);
    assert_eq!(missing, longer);
    assert_eq!(request(&url, None, None, Some("s3cret-one")).0, 200);
    assert_eq!(request(&url, None, None, Some("second-token")).0, 200);
    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(server.get("/readyz").0, 200);
    assert_eq!(server.get("/metrics").0, 401);
    let (status, metrics) = request(&server.url("/metrics"), None, None, Some("second-token"));
    assert_eq!(status, 200);
    for name in [
        "nurture_events_accepted_total",
        "nurture_events_refused_total",
        "nurture_actions_emitted_total",
        "nurture_timer_lag_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
}

#[test]
fn without_tokens_only_loopback_is_served_and_bad_flags_are_refused() {
    let (_dir, flow, state) = program_dir();
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    for (args, says) in [
        (vec!["--listen", "0.0.0.0:0"], "not a loopback address"),
        (vec!["--max-body", "lots"], "--max-body `lots`"),
        (vec!["--sink", "kafka:x"], "is none of"),
        (vec!["--read-timeout", "0s"], "--read-timeout"),
    ] {
        let o = bin()
            .arg("serve")
            .arg(&flow)
            .args(["--state", &s(&state)])
            .args(&args)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert!(!state.exists(), "nothing was written");
}

#[test]
fn a_body_over_the_limit_gets_413() {
    let (_dir, flow, state) = program_dir();
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let server = Server::start(&[&s(&flow), "--state", &s(&state), "--max-body", "1KiB"]);
    let big = created(&"x".repeat(2000), "2026-03-01T10:00:00Z");
    let (status, body) = server.post_json("/v1/events", &big);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("nurture::serve::body-too-large"), "{body}");
    // The wall clock: a client clock far ahead is refused, field `at`.
    let (status, body) = server.post_json("/v1/events", &created("a", "2099-01-01T00:00:00Z"));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(r#""field":"at""#), "{body}");
    assert!(body.contains("more than 5 minutes ahead"), "{body}");
}

/// A receiver of webhooks: answers each request with the next status of
/// `statuses` (200 once they run out) and keeps what it was sent.
pub struct Receiver {
    pub addr: String,
    /// Per request: its `Idempotency-Key`, its signature, its body.
    pub got: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl Receiver {
    pub fn start(statuses: Vec<u16>) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let got = Arc::new(Mutex::new(Vec::new()));
        let kept = got.clone();
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for stream in listener.incoming().take(2000) {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut head = String::new();
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let status = statuses.next().unwrap_or(200);
                kept.lock().expect("got").push((
                    header("Idempotency-Key"),
                    header("X-Nurture-Signature"),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 4\r\nRetry-After: 0\r\nConnection: close\r\n\r\nnope"
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Receiver { addr, got }
    }
}

#[test]
fn a_webhook_sink_retries_signs_and_dead_letters() {
    let (dir, flow, state) = program_dir();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "hush\n").expect("write");
    // 503 then 200 for the first batch; 400 for the second.
    let receiver = Receiver::start(vec![503, 200, 400]);
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let hook = format!("webhook:http://{}/hook", receiver.addr);
    let mut server = Server::start(&[
        &s(&flow),
        "--state",
        &s(&state),
        "--clock",
        "virtual",
        "--sink",
        &hook,
        "--webhook-secret-file",
        &s(&secret),
        "--webhook-batch",
        "2",
    ]);
    // Four actions (two contacts, a tag now and one later each): at least
    // two batches of two.
    let batch = format!(
        "{}\n{}\n{}\n{}\n",
        created("a", "2026-03-01T10:00:00Z"),
        created("b", "2026-03-01T10:00:00Z"),
        opened("a", "2026-03-01T10:00:00Z"),
        opened("b", "2026-03-01T10:00:01Z"),
    );
    assert_eq!(server.post_lines("/v1/events", &batch).0, 202);
    assert_eq!(server.post_json("/v1/clock", r#"{"drain":true}"#).0, 200);
    let started = Instant::now();
    while receiver.got.lock().expect("got").len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}\n{}",
            receiver.got.lock().expect("got"),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = receiver.got.lock().expect("got").clone();
    // The retried batch keeps its key and body; the signature is the
    // body's HMAC-SHA256 with the secret.
    assert_eq!(got[0], got[1]);
    let bounds = |key: &str| -> (u64, u64) {
        let (a, b) = key.split_once('-').expect("FIRST-LAST");
        (a.parse().expect("first"), b.parse().expect("last"))
    };
    let (first, last) = bounds(&got[0].0);
    assert_eq!(first, 1, "{got:?}");
    assert_eq!(got[0].2.lines().count() as u64, last - first + 1, "{got:?}");
    assert!(got[0].2.lines().count() <= 2, "--webhook-batch 2: {got:?}");
    // The next batch starts where the delivered one ended.
    assert_eq!(bounds(&got[2].0).0, last + 1, "{got:?}");
    for (_, signature, body) in &got {
        assert_eq!(
            *signature,
            format!("sha256={}", nurture::serve::sign(b"hush", body.as_bytes()))
        );
    }
    let dead = nurture::serve::dead_letter_path(&state);
    let started = Instant::now();
    while !dead.exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&dead).expect("a dead-letter file");
    let v: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("JSON");
    assert_eq!(v["status"], 400);
    assert_eq!(v["response"], "nope");
    assert_eq!(v["idempotency_key"], got[2].0.as_str());
    assert_eq!(
        v["actions"].as_array().expect("actions").len(),
        got[2].2.lines().count()
    );
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    assert!(server.log().contains("dead-lettered"), "{}", server.log());
}

#[test]
fn sighup_reloads_a_program_the_rule_accepts_and_keeps_the_old_one_otherwise() {
    let (_dir, flow, state) = program_dir();
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let server = Server::start(&[&s(&flow), "--state", &s(&state), "--clock", "virtual"]);
    let batch = format!(
        "{}\n{}\n",
        created("a", "2026-03-01T10:00:00Z"),
        opened("a", "2026-03-01T10:00:00Z")
    );
    assert_eq!(server.post_lines("/v1/events", &batch).0, 202);
    let fingerprint = |server: &Server| -> String {
        let (_, body) = server.get("/v1/state");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        v["program"].as_str().expect("program").to_string()
    };
    let first = fingerprint(&server);
    // The workflow with a journey in flight changes: refused.
    std::fs::write(&flow, with_schema(&PROGRAM.replace("wait 2s", "wait 3s"))).expect("write");
    server.signal("HUP");
    wait_for_log(&server, "reload refused");
    assert_eq!(fingerprint(&server), first);
    // A workflow added: accepted.
    let added = format!("{PROGRAM}\nworkflow buyers {{\n  when purchase\n  tag \"buyer\"\n}}\n");
    std::fs::write(&flow, with_schema(&added)).expect("write");
    server.signal("HUP");
    wait_for_log(&server, "reloaded");
    assert_ne!(fingerprint(&server), first);
    let (status, body) = server.post_json(
        "/v1/events",
        r#"{"at":"2026-03-01T10:00:01Z","contact":"a","type":"purchase","order_id":"o","amount":1.0,"category":"x"}"#,
    );
    assert_eq!(status, 202, "{body}");
    assert!(
        server.actions().contains(r#""tag":"buyer""#),
        "{}",
        server.actions()
    );
    assert_eq!(server.post_json("/v1/clock", r#"{"drain":true}"#).0, 200);
    assert!(server.actions().contains("two seconds later"));
}

/// SIGHUP takes up a change by section 13's rule: a journey at a named
/// wait moves keeping its deadline; `on change exit` ends the others at
/// the reload, their `end` records in the outbox (with `--trace`); the
/// state survives a restart with the new program.
#[test]
fn sighup_moves_named_waits_and_exits_the_rest() {
    let (_dir, flow, state) = program_dir();
    let v1 = "workflow engaged {\n  when email_opened\n  wait 2s as pause\n  tag \"v1\"\n}\n\nworkflow other {\n  when email_opened\n  wait 5s\n  tag \"other\"\n}\n";
    std::fs::write(&flow, with_schema(v1)).expect("write");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let args = [
        &s(&flow),
        "--state",
        &s(&state),
        "--clock",
        "virtual",
        "--trace",
    ];
    let mut server = Server::start(&args);
    let batch = format!(
        "{}\n{}\n",
        created("a", "2026-03-01T10:00:00Z"),
        opened("a", "2026-03-01T10:00:00Z")
    );
    assert_eq!(server.post_lines("/v1/events", &batch).0, 202);
    let v2 = "workflow engaged {\n  when email_opened\n  wait 9s as pause\n  tag \"v2\"\n}\n\nworkflow other {\n  when email_opened\n  on change exit\n  wait 6s\n  tag \"other\"\n}\n";
    std::fs::write(&flow, with_schema(v2)).expect("write");
    server.signal("HUP");
    wait_for_log(&server, "reloaded");
    assert!(
        server.log().contains("1 journeys ended by the change"),
        "{}",
        server.log()
    );
    let actions = server.actions();
    assert!(
        actions.contains(
            r#""workflow":"other","action":"end","outcome":"exited","reason":"program_change""#
        ),
        "{actions}"
    );
    // Stopped and started again with the new program: nothing to take up.
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    server = Server::start(&args);
    assert_eq!(server.post_json("/v1/clock", r#"{"drain":true}"#).0, 200);
    let actions = server.actions();
    assert!(
        actions.contains(r#"{"at":"2026-03-01T10:00:02Z","contact":"a","workflow":"engaged","action":"tag","tag":"v2""#),
        "moved with its 2-second deadline: {actions}"
    );
    assert!(!actions.contains(r#""tag":"other""#), "{actions}");
    assert_eq!(
        actions.matches("program_change").count(),
        1,
        "the end record is written once: {actions}"
    );
}

fn wait_for_log(server: &Server, text: &str) {
    let started = Instant::now();
    while !server.log().contains(text) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no `{text}` in the log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------ the wall clock, kills under load

/// 2,000 events from 4 concurrent clients (retrying with their event ids)
/// into a program with 2-second waits, the service killed with SIGKILL
/// five times meanwhile and started again with the same command: every
/// event answered 202 is journaled exactly once, and the file sink holds
/// exactly what `nurture run` over the journal gives.
#[test]
fn wall_clock_under_load_with_five_kills_keeps_the_journal_criterion() {
    let (dir, flow, state) = program_dir();
    let out = dir.path().join("actions.jsonl");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let sink = format!("file:{}", s(&out));
    let args: Vec<String> = vec![
        s(&flow),
        "--state".into(),
        s(&state),
        "--listen".into(),
        listen.clone(),
        "--sink".into(),
        sink,
    ];
    let start = move || Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let server = Arc::new(Mutex::new(start()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for client in 0..4 {
        let accepted = accepted.clone();
        let url = format!("http://{listen}/v1/events");
        clients.push(std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(client);
            let records = client_records(client, 25, 475, &mut rng);
            let mut i = 0;
            while i < records.len() {
                let n = rng.usize(1..=8).min(records.len() - i);
                let body: String = records[i..i + n]
                    .iter()
                    .map(|(id, rest)| format!("{{\"id\":\"{id}\",{rest}}}\n"))
                    .collect();
                // Retried until accepted: the ids make a retry harmless.
                let started = Instant::now();
                loop {
                    let (status, text) =
                        request(&url, Some("application/x-ndjson"), Some(&body), None);
                    if status == 202 {
                        break;
                    }
                    assert!(status == 0 || status == 503, "status {status}: {text}");
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "never accepted"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                accepted
                    .lock()
                    .expect("accepted")
                    .extend(records[i..i + n].iter().map(|(id, _)| id.clone()));
                i += n;
                std::thread::sleep(Duration::from_millis(rng.u64(5..25)));
            }
        }));
    }
    let killer = {
        let server = server.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(99);
            let mut under_load = 0;
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(rng.u64(150..400)));
                let mut s = server.lock().expect("server");
                if !done.load(std::sync::atomic::Ordering::Acquire) {
                    under_load += 1;
                }
                s.kill9();
                *s = start();
            }
            under_load
        })
    };
    for c in clients {
        c.join().expect("a client");
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let under_load = killer.join().expect("the killer");
    assert!(
        under_load >= 3,
        "only {under_load} of the kills came under load"
    );
    // Every journey's 2-second wait ends; then a clean stop.
    std::thread::sleep(Duration::from_millis(2500));
    let mut server = Arc::try_unwrap(server)
        .ok()
        .expect("one owner")
        .into_inner()
        .expect("server");
    let started = Instant::now();
    loop {
        let (_, body) = server.get("/v1/state");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if v["workflows"][0]["in_flight"] == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let journal = bin()
        .args(["journal", "--state", &s(&state)])
        .output()
        .expect("runs");
    assert_eq!(journal.status.code(), Some(0), "{}", stderr(&journal));
    let journal_text = stdout(&journal);
    let mut ids: Vec<String> = journal_text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            v["id"].as_str().expect("id").to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2000, "every event journaled once");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2000, "no event journaled twice");
    let mut acked = accepted.lock().expect("accepted").clone();
    acked.sort();
    assert_eq!(acked, ids, "every 202 is in the journal");
    // The journal criterion: a run over the journal, to the service's last
    // clock, gives the file sink's actions.
    let sink = std::fs::read_to_string(&out).expect("the file sink");
    let last = journal_text
        .lines()
        .chain(sink.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        // By time, not by text: a whole second is written without
        // milliseconds (`...:29Z` sorts after `...:29.574Z` as text).
        .filter_map(|v| v["at"].as_str().and_then(nurture::runtime::parse_datetime))
        .max()
        .map(nurture::runtime::format_datetime)
        .expect("a time");
    let journal_file = dir.path().join("journal.jsonl");
    std::fs::write(&journal_file, &journal_text).expect("write");
    let run = bin()
        .arg("run")
        .arg(&flow)
        .arg("--events")
        .arg(&journal_file)
        .args(["--until", &last])
        .output()
        .expect("runs");
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(sink.lines().count() > 100, "{sink}");
    let (got, want) = (normalized(&sink), normalized(&stdout(&run)));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "the file sink differs from the run over the journal at line {}: sink {:?}, run {:?} ({} and {} lines)",
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first),
            got.lines().count(),
            want.lines().count()
        );
    }
}

/// A file sink written past the position its state records (the process
/// died between writing and recording) is cut back and written again:
/// exactly once.
#[test]
fn a_file_sink_written_past_its_recorded_position_is_cut_back() {
    let (dir, flow, state) = program_dir();
    let out = dir.path().join("out.jsonl");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let sink = format!("file:{}", s(&out));
    let args = [
        &s(&flow),
        "--state",
        &s(&state),
        "--clock",
        "virtual",
        "--sink",
        &sink,
    ];
    let mut server = Server::start(&args);
    let batch = format!(
        "{}\n{}\n",
        created("a", "2026-03-01T10:00:00Z"),
        opened("a", "2026-03-01T10:00:00Z")
    );
    assert_eq!(server.post_lines("/v1/events", &batch).0, 202);
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let delivered = std::fs::read_to_string(&out).expect("the sink");
    assert_eq!(delivered.lines().count(), 1, "{delivered}");
    // What a process killed after writing, before recording, leaves.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .expect("open");
    f.write_all(b"{\"half\":\"written\"}\n").expect("write");
    drop(f);
    let mut server = Server::start(&args);
    assert_eq!(
        server
            .post_json("/v1/clock", r#"{"until":"2026-03-01T10:00:05Z"}"#)
            .0,
        200
    );
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let text = std::fs::read_to_string(&out).expect("the sink");
    assert!(!text.contains("half"), "{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.starts_with(&delivered), "{text}");
}

/// A dead webhook (nothing listens at its address) holds back only its
/// own deliveries: events are still accepted, and its backlog shows in
/// the metrics.
#[test]
fn a_dead_webhook_never_blocks_ingest() {
    let (_dir, flow, state) = program_dir();
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let hook = format!("webhook:http://127.0.0.1:{}/gone", free_port());
    let server = Server::start(&[&s(&flow), "--state", &s(&state), "--sink", &hook]);
    assert_eq!(
        server
            .post_json("/v1/events", &created("a", "2026-03-01T10:00:00Z"))
            .0,
        202
    );
    for n in 0..50 {
        let started = Instant::now();
        let (status, body) = server.post_json(
            "/v1/events",
            &format!(r#"{{"contact":"a","type":"email_opened","campaign":"n{n}"}}"#),
        );
        assert_eq!(status, 202, "{body}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let started = Instant::now();
    loop {
        let (_, metrics) = server.get("/metrics");
        let line = metrics
            .lines()
            .find(|l| l.starts_with("nurture_sink_retried_total{"))
            .unwrap_or("")
            .to_string();
        let retried: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        if retried >= 1.0 {
            assert!(
                metrics.contains("nurture_sink_backlog{sink=\"webhook:"),
                "{metrics}"
            );
            assert!(
                metrics.contains("nurture_events_accepted_total 51"),
                "{metrics}"
            );
            assert!(
                metrics.contains("nurture_journeys_in_flight{workflow=\"engaged\"}"),
                "{metrics}"
            );
            assert!(
                metrics.contains("nurture_accept_seconds_bucket"),
                "{metrics}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /v1/state` is what `nurture inspect --format json` prints after
/// shutdown; `GET /v1/report` is the report `nurture run --report` writes
/// over the same events; the page is the HTML report.
#[test]
fn state_and_report_match_inspect_and_run() {
    let ex = root().join("examples");
    let events = ex.join("events").join("lead_nurturing.jsonl");
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("s.db");
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let mut server = Server::start(&[&s(&ex), "--state", &s(&state), "--clock", "virtual"]);
    let text = std::fs::read_to_string(&events).expect("events");
    assert_eq!(server.post_lines("/v1/events", &text).0, 202);
    let (status, served_state) = server.get("/v1/state");
    assert_eq!(status, 200);
    let (status, report) = server.get("/v1/report");
    assert_eq!(status, 200);
    let (status, page) = server.get("/v1/report.html");
    assert_eq!(status, 200);
    assert!(
        page.starts_with("<!DOCTYPE html>") || page.starts_with("<!doctype html>"),
        "{page}"
    );
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let inspect = bin()
        .args(["inspect", "--state", &s(&state), "--format", "json"])
        .output()
        .expect("runs");
    assert_eq!(inspect.status.code(), Some(0), "{}", stderr(&inspect));
    let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).expect("JSON");
    assert_eq!(parse(&served_state), parse(&stdout(&inspect)));
    let run_report = dir.path().join("r.json");
    let run = bin()
        .arg("run")
        .arg(&ex)
        .arg("--events")
        .arg(&events)
        .arg("--report")
        .arg(&run_report)
        .output()
        .expect("runs");
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let written = std::fs::read_to_string(&run_report).expect("report");
    assert_eq!(parse(&report), parse(&written));
}

/// A body that arrives slower than `--read-timeout` is cut with 408.
#[test]
fn a_slow_body_is_cut_after_the_read_timeout() {
    let (_dir, flow, state) = program_dir();
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    let server = Server::start(&[&s(&flow), "--state", &s(&state), "--read-timeout", "1s"]);
    let mut stream = std::net::TcpStream::connect(&server.addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    let started = Instant::now();
    write!(
        stream,
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"contact\":"
    )
    .expect("sent");
    stream.flush().expect("flushed");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("nurture::serve::read-timeout"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(started.elapsed() < Duration::from_secs(8));
}
