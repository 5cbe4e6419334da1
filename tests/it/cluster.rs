//! Many machines: several `nurture serve --store postgres://...` processes
//! (separate OS processes) on a real PostgreSQL server, each test in a
//! schema of its own. `NURTURE_TEST_POSTGRES` names the server (default
//! the local one); without one these tests fail and say how to get one.

use crate::helpers::{bin, stderr, stdout, with_schema};
use crate::serve::{free_port, request, Server};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static SCHEMAS: AtomicU32 = AtomicU32::new(0);

/// A schema of its own on the test server, dropped at the end.
struct Db {
    url: String,
    base: String,
    schema: String,
}

fn database() -> Db {
    let base = std::env::var("NURTURE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut c = postgres::Client::connect(&base, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "these tests need PostgreSQL and none answers at {base} ({e}). Start the local server with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or set \
             NURTURE_TEST_POSTGRES to the URL of a database the tests may create schemas in."
        )
    });
    let schema = format!(
        "nurture_test_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed)
    );
    c.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .expect("a schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    Db { url, base, schema }
}

impl Db {
    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connects")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the schema {} is kept for a look", self.schema);
            return;
        }
        if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

const PROGRAM: &str = r#"
workflow engaged {
  when email_opened
  tag "opened"
  wait 1s
  tag "a second later"
}
"#;

fn init(db: &Db, flow: &Path, partitions: u32) -> std::process::Output {
    bin()
        .arg("serve")
        .arg(flow)
        .args([
            "--store",
            &db.url,
            "--init",
            "--partitions",
            &partitions.to_string(),
        ])
        .output()
        .expect("runs")
}

#[test]
fn init_makes_the_schema_once_and_p_never_changes() {
    let db = database();
    let dir = tempfile::tempdir().expect("tmp");
    let flow = dir.path().join("p.flow");
    std::fs::write(&flow, with_schema(PROGRAM)).expect("write");
    // Before --init, a process is refused with what to do.
    let o = bin()
        .arg("serve")
        .arg(&flow)
        .args(["--store", &db.url])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--init"), "{}", stderr(&o));
    let o = init(&db, &flow, 8);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = init(&db, &flow, 8);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = init(&db, &flow, 16);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("P never changes"), "{}", stderr(&o));
    let n: i64 = db
        .client()
        .query_one("SELECT count(*) FROM nurture_partitions", &[])
        .expect("query")
        .get(0);
    assert_eq!(n, 8);
    // A process with another program is refused: one program per cluster.
    let server = Server::start(&[flow.to_str().expect("utf-8"), "--store", &db.url]);
    drop(server);
    let other = dir.path().join("q.flow");
    std::fs::write(&other, with_schema(&PROGRAM.replace("1s", "2s"))).expect("write");
    let o = bin()
        .arg("serve")
        .arg(&other)
        .args(["--store", &db.url])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("same program"), "{}", stderr(&o));
}

/// Every outbox line of the cluster, by contact, without ids and partitions.
fn outbox_by_contact(db: &Db) -> BTreeMap<String, Vec<String>> {
    let rows = db
        .client()
        .query(
            "SELECT line FROM nurture_outbox ORDER BY partition, seq",
            &[],
        )
        .expect("query");
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rows {
        let line: String = r.get(0);
        let mut v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        let o = v.as_object_mut().expect("object");
        o.remove("id");
        o.remove("partition");
        let contact = o["contact"].as_str().expect("contact").to_string();
        by.entry(contact).or_default().push(v.to_string());
    }
    by
}

/// `nurture run` over the cluster's journal, to its last clock, by contact.
fn run_by_contact(db: &Db, flow: &Path, dir: &Path) -> BTreeMap<String, Vec<String>> {
    let j = bin()
        .args(["journal", "--store", &db.url])
        .output()
        .expect("runs");
    assert_eq!(j.status.code(), Some(0), "{}", stderr(&j));
    let journal = dir.join("journal.jsonl");
    std::fs::write(&journal, stdout(&j)).expect("write");
    let last_out: Option<i64> = db
        .client()
        .query_one("SELECT max(clock) FROM nurture_partitions", &[])
        .expect("query")
        .get(0);
    let until = nurture::runtime::format_datetime(last_out.expect("a clock"));
    let run = bin()
        .arg("run")
        .arg(flow)
        .arg("--events")
        .arg(&journal)
        .args(["--until", &until])
        .output()
        .expect("runs");
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in stdout(&run).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let contact = v["contact"].as_str().expect("contact").to_string();
        by.entry(contact).or_default().push(v.to_string());
    }
    by
}

/// Waits until every partition has run its whole inbox and its journeys'
/// one-second waits have ended.
fn settle(db: &Db) {
    let started = Instant::now();
    let mut c = db.client();
    loop {
        let done: bool = c
            .query_one(
                "SELECT bool_and(inbox_pos = inbox_head) FROM nurture_partitions",
                &[],
            )
            .expect("query")
            .get(0);
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "inboxes not run"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The last waits end (1 s), and their actions are committed.
    let mut last = -1i64;
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let n: i64 = c
            .query_one("SELECT count(*) FROM nurture_outbox", &[])
            .expect("query")
            .get(0);
        if n == last {
            return;
        }
        last = n;
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "actions still coming"
        );
    }
}

/// Section 12's criterion: 20,000 events for 2,000 contacts posted to
/// three processes at random, one killed with SIGKILL and started again,
/// another stopped with SIGTERM; per contact, the outboxes hold exactly
/// what `nurture run` gives over the accepted events.
#[test]
fn the_correctness_criterion_holds_through_a_kill_and_a_stop() {
    let db = database();
    let dir = tempfile::tempdir().expect("tmp");
    let flow = dir.path().join("p.flow");
    std::fs::write(&flow, with_schema(PROGRAM)).expect("write");
    let o = init(&db, &flow, 16);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let flow_s = flow.to_str().expect("utf-8").to_string();
    let url = db.url.clone();
    let start = move |port: u16| {
        Server::start(&[
            &flow_s,
            "--store",
            &url,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--failover",
            "2s",
        ])
    };
    let servers: Vec<Arc<Mutex<Option<Server>>>> = ports
        .iter()
        .map(|p| Arc::new(Mutex::new(Some(start(*p)))))
        .collect();
    let accepted = Arc::new(AtomicU32::new(0));
    let mut clients = Vec::new();
    for client in 0..4u64 {
        let ports = ports.clone();
        let accepted = accepted.clone();
        clients.push(std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(client);
            let records = crate::serve::client_records(client, 500, 4500, &mut rng);
            let mut i = 0;
            while i < records.len() {
                let n = rng.usize(10..=60).min(records.len() - i);
                let body: String = records[i..i + n]
                    .iter()
                    .map(|(id, rest)| format!("{{\"id\":\"{id}\",{rest}}}\n"))
                    .collect();
                let started = Instant::now();
                loop {
                    let port = ports[rng.usize(0..ports.len())];
                    let (status, text) = request(
                        &format!("http://127.0.0.1:{port}/v1/events"),
                        Some("application/x-ndjson"),
                        Some(&body),
                        None,
                    );
                    if status == 202 {
                        break;
                    }
                    assert!(status == 0 || status == 503, "status {status}: {text}");
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "never accepted"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                accepted.fetch_add(n as u32, Ordering::Relaxed);
                i += n;
            }
        }));
    }
    // A third of the way in: kill -9 the first process, start it again;
    // two thirds in: stop the second with SIGTERM, for good.
    while accepted.load(Ordering::Relaxed) < 7_000 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_pid = {
        let mut s = servers[0].lock().expect("server");
        let server = s.as_mut().expect("running");
        let pid = server.pid();
        server.kill9();
        pid
    };
    let killed_at = Instant::now();
    *servers[0].lock().expect("server") = Some(start(ports[0]));
    // Failover: every partition the killed process owned has a new owner.
    let mut c = db.client();
    let failover = loop {
        let held: i64 = c
            .query_one(
                "SELECT count(*) FROM nurture_partitions WHERE owner LIKE $1",
                &[&format!("%-{killed_pid}-%")],
            )
            .expect("query")
            .get(0);
        if held == 0 {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < Duration::from_secs(30), "no failover");
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("failover after kill -9: {} ms", failover.as_millis());
    while accepted.load(Ordering::Relaxed) < 14_000 {
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        let mut s = servers[1].lock().expect("server");
        let server = s.as_mut().expect("running");
        assert_eq!(server.terminate(), Some(0), "{}", server.log());
    }
    for c in clients {
        c.join().expect("a client");
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 20_000);
    settle(&db);
    let inbox: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM nurture_inbox WHERE kind = 'event'",
            &[],
        )
        .expect("query")
        .get(0);
    assert_eq!(inbox, 20_000, "every accepted event once in the inboxes");
    // New owners started from snapshots (taken every 300 ms here).
    let snapshots: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM nurture_partitions WHERE snapshot IS NOT NULL AND snap_inbox > 0",
            &[],
        )
        .expect("query")
        .get(0);
    assert!(snapshots > 0, "no partition took a snapshot");
    let got = outbox_by_contact(&db);
    let want = run_by_contact(&db, &flow, dir.path());
    assert_eq!(got.len(), 2000);
    assert_eq!(want.len(), 2000);
    for (contact, lines) in &want {
        assert_eq!(
            got.get(contact),
            Some(lines),
            "contact {contact}: the outboxes differ from nurture run"
        );
    }
    // The state and the report answer from any process, summed.
    let live = servers[2].lock().expect("server");
    let live = live.as_ref().expect("running");
    let (status, body) = live.get("/v1/state");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["contacts"], 2000, "{body}");
    let (status, body) = live.get("/v1/report");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["workflows"][0]["entered"], 2000, "{body}");
}

/// A process paused past the failover time loses its partitions; resumed,
/// it cannot write to them: nothing it ran after losing them is in the
/// outboxes, and each contact's actions are still those of `nurture run`.
#[test]
fn a_paused_process_cannot_write_to_the_partitions_it_lost() {
    let db = database();
    let dir = tempfile::tempdir().expect("tmp");
    let flow = dir.path().join("p.flow");
    std::fs::write(&flow, with_schema(PROGRAM)).expect("write");
    assert_eq!(init(&db, &flow, 8).status.code(), Some(0));
    let flow_s = flow.to_str().expect("utf-8").to_string();
    let start =
        |failover: &str| Server::start(&[&flow_s, "--store", &db.url, "--failover", failover]);
    let a = start("1s");
    let b = start("1s");
    let mut c = db.client();
    // Both own their share.
    let owners = |c: &mut postgres::Client| -> BTreeMap<String, i64> {
        c.query(
            "SELECT owner, count(*) FROM nurture_partitions WHERE owner IS NOT NULL GROUP BY owner",
            &[],
        )
        .expect("query")
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect()
    };
    let started = Instant::now();
    loop {
        let o = owners(&mut c);
        if o.len() == 2 && o.values().all(|n| *n == 4) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{o:?}\n--- a:\n{}\n--- b:\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let creates: String = (0..40)
        .map(|k| {
            format!(
                "{{\"contact\":\"c{k}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"c{k}@x.io\",\"country\":\"IT\",\"opted_in\":true}}}}\n"
            )
        })
        .collect();
    assert_eq!(b.post_lines("/v1/events", &creates).0, 202);
    let a_pid = a.pid();
    a.signal("STOP");
    let paused = Instant::now();
    // b takes every partition once a is silent past the failover time.
    loop {
        let o = owners(&mut c);
        if !o.keys().any(|k| k.contains(&format!("-{a_pid}-"))) {
            break;
        }
        assert!(paused.elapsed() < Duration::from_secs(20), "{o:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "failover of a paused process: {} ms",
        paused.elapsed().as_millis()
    );
    let opens: String = (0..40)
        .map(|k| format!("{{\"contact\":\"c{k}\",\"type\":\"email_opened\",\"campaign\":\"x\"}}\n"))
        .collect();
    assert_eq!(b.post_lines("/v1/events", &opens).0, 202);
    a.signal("CONT");
    // a finds its session ended and its partitions' epochs moved on.
    let started = Instant::now();
    while !a.log().contains("given up") && !a.log().contains("lost") {
        assert!(started.elapsed() < Duration::from_secs(20), "{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    settle(&db);
    let got = outbox_by_contact(&db);
    let want = run_by_contact(&db, &flow, dir.path());
    assert_eq!(got, want);
    // Each partition's outbox is numbered 1..n without a gap or a double.
    let rows = c
        .query(
            "SELECT partition, count(*), max(seq) FROM nurture_outbox GROUP BY partition",
            &[],
        )
        .expect("query");
    for r in rows {
        assert_eq!(r.get::<_, i64>(1), r.get::<_, i64>(2));
    }
    // Rejects: an event for a contact its partition does not know.
    assert_eq!(
        b.post_json(
            "/v1/events",
            r#"{"contact":"nobody","type":"email_opened","campaign":"x"}"#
        )
        .0,
        202
    );
    let started = Instant::now();
    loop {
        let (status, body) = b.get("/v1/rejects");
        assert_eq!(status, 200);
        if body.contains("unknown contact `nobody`") {
            let v: serde_json::Value =
                serde_json::from_str(body.lines().next().expect("a line")).expect("JSON");
            assert_eq!(v["record"]["contact"], "nobody");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A webhook sink in a cluster: each partition's owner delivers that
/// partition's actions, in batches of one partition, keyed `P:FIRST-LAST`;
/// every action of the outboxes arrives.
#[test]
fn a_clusters_webhook_batches_hold_one_partition_each() {
    let db = database();
    let dir = tempfile::tempdir().expect("tmp");
    let flow = dir.path().join("p.flow");
    std::fs::write(&flow, with_schema(PROGRAM)).expect("write");
    assert_eq!(init(&db, &flow, 4).status.code(), Some(0));
    let receiver = crate::serve::Receiver::start(vec![503]);
    let hook = format!("webhook:http://{}/hook", receiver.addr);
    let flow_s = flow.to_str().expect("utf-8").to_string();
    let start = || {
        Server::start(&[
            &flow_s,
            "--store",
            &db.url,
            "--sink",
            &hook,
            "--clock",
            "virtual",
            "--webhook-batch",
            "3",
        ])
    };
    let a = start();
    let _b = start();
    let mut body = String::new();
    for k in 0..20 {
        body.push_str(&format!(
            "{{\"at\":\"2026-03-01T10:00:00Z\",\"contact\":\"c{k}\",\"type\":\"contact_created\",\"attributes\":{{\"email\":\"c{k}@x.io\",\"country\":\"IT\",\"opted_in\":true}}}}\n"
        ));
    }
    for k in 0..20 {
        body.push_str(&format!(
            "{{\"at\":\"2026-03-01T10:00:01Z\",\"contact\":\"c{k}\",\"type\":\"email_opened\",\"campaign\":\"x\"}}\n"
        ));
    }
    assert_eq!(a.post_lines("/v1/events", &body).0, 202);
    let (status, text) = a.post_json("/v1/clock", r#"{"drain":true}"#);
    assert_eq!(status, 200, "{text}");
    // Every action of the outboxes arrives (at least once).
    let started = Instant::now();
    let mut by_partition: BTreeMap<u64, std::collections::BTreeSet<u64>> = BTreeMap::new();
    loop {
        by_partition.clear();
        for (key, _, body) in receiver.got.lock().expect("got").iter() {
            let (p, range) = key.split_once(':').expect("P:FIRST-LAST");
            let p: u64 = p.parse().expect("a partition");
            let (first, last) = range.split_once('-').expect("FIRST-LAST");
            let ids: Vec<u64> = body
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
                    assert_eq!(v["partition"], p, "one partition a batch: {body}");
                    v["id"].as_u64().expect("id")
                })
                .collect();
            assert!(ids.len() <= 3, "{body}");
            assert_eq!(ids.first().map(u64::to_string).as_deref(), Some(first));
            assert_eq!(ids.last().map(u64::to_string).as_deref(), Some(last));
            by_partition.entry(p).or_default().extend(ids);
        }
        let total: usize = by_partition.values().map(|s| s.len()).sum();
        if total == 40 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{total} of 40 actions delivered: {by_partition:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each partition's ids are 1..n, as its outbox numbers them.
    for ids in by_partition.values() {
        assert_eq!(
            ids.iter().copied().collect::<Vec<_>>(),
            (1..=ids.len() as u64).collect::<Vec<_>>()
        );
    }
    assert!(by_partition.len() > 1, "{by_partition:?}");
}
