//! The HTTP API of section 11, on axum: every handler asks the engine's
//! thread and answers with what it says. Errors are `{"error": {"code",
//! "message"}}`.

use super::engine::{After, BadRecord, Cmd, Handle, Refusal};
use super::posted::Posted;
use super::{Config, Shared};
use crate::runtime::{format_datetime, parse_datetime};
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value as Json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct App {
    cfg: Arc<Config>,
    engine: Handle,
    shared: Arc<Shared>,
    metrics: PrometheusHandle,
}

/// The Prometheus recorder, with the accept latency as a histogram.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("nurture_accept_seconds".into()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ],
        )
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())?;
    // Every metric is there from the start, at zero.
    metrics::counter!("nurture_events_accepted_total").increment(0);
    metrics::counter!("nurture_events_refused_total").increment(0);
    metrics::counter!("nurture_actions_emitted_total").increment(0);
    metrics::gauge!("nurture_timer_lag_seconds").set(0.0);
    Ok(handle)
}

pub fn router(
    cfg: Arc<Config>,
    engine: Handle,
    shared: Arc<Shared>,
    metrics: PrometheusHandle,
) -> Router {
    let app = App {
        cfg,
        engine,
        shared,
        metrics,
    };
    Router::new()
        .route("/v1/events", post(events))
        .route("/v1/clock", post(clock))
        .route("/v1/contacts/{id}", get(contact))
        .route("/v1/state", get(state))
        .route("/v1/report", get(report_json))
        .route("/v1/report.html", get(report_html))
        .route("/v1/actions", get(actions))
        .route("/v1/rejects", get(rejects))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// An error answer.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, axum::Json(body)).into_response()
}

fn unavailable(why: &str) -> Response {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "nurture::serve::unavailable",
        format!("the service is not accepting requests: {why}"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn stopped() -> Response {
    unavailable("the engine has stopped")
}

/// Access control and shutdown: every endpoint but `/healthz` and
/// `/readyz` needs a bearer token when tokens are configured; once
/// stopping, new requests get 503.
async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let open = path == "/healthz" || path == "/readyz";
    if !open && !app.cfg.tokens.is_empty() && !authorized(&app.cfg.tokens, req.headers()) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "nurture::serve::unauthorized",
            "unauthorized",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    if !open
        && app
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::Acquire)
    {
        return unavailable("shutting down");
    }
    next.run(req).await
}

/// Whether the request carries one of the tokens, compared in constant
/// time (every token is compared, whatever matched).
fn authorized(tokens: &[String], headers: &HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim();
    let mut ok = subtle::Choice::from(0u8);
    for t in tokens {
        ok |= given.as_bytes().ct_eq(t.as_bytes());
    }
    !given.is_empty() && bool::from(ok)
}

/// Reads a body up to `--max-body`, within `--read-timeout`.
async fn read_body(app: &App, body: Body) -> Result<axum::body::Bytes, Response> {
    let max = app.cfg.max_body;
    match tokio::time::timeout(app.cfg.read_timeout, axum::body::to_bytes(body, max)).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "nurture::serve::read-timeout",
            format!(
                "the body did not arrive within --read-timeout ({} s)",
                app.cfg.read_timeout.as_secs()
            ),
        )),
        Ok(Err(e)) => {
            // axum's limit error, by its words (its type is another crate's).
            let too_large =
                format!("{e} {:?}", std::error::Error::source(&e)).contains("length limit");
            if too_large {
                Err(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "nurture::serve::body-too-large",
                    format!("the body is over --max-body ({max} bytes)"),
                ))
            } else {
                Err(error(
                    StatusCode::BAD_REQUEST,
                    "nurture::serve::bad-body",
                    format!("the body could not be read: {e}"),
                ))
            }
        }
        Ok(Ok(b)) => Ok(b),
    }
}

fn refused_batch(bad: &[BadRecord]) -> Response {
    let first = &bad[0];
    let message = if bad.len() == 1 {
        format!("record {}: {}", first.index, first.reason)
    } else {
        format!(
            "{} bad records; record {}: {}",
            bad.len(),
            first.index,
            first.reason
        )
    };
    let body = json!({ "error": {
        "code": "nurture::input::bad-record",
        "message": format!("{message}; nothing of the batch was accepted"),
        "records": bad,
    }});
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

fn refusal(r: Refusal) -> Response {
    match r {
        Refusal::Unavailable(why) => unavailable(why),
        Refusal::Conflict(m) => error(StatusCode::CONFLICT, "nurture::serve::conflict", m),
    }
}

/// `POST /v1/events`: one object, or JSON Lines for a batch.
async fn events(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    if !app.shared.is_ready() {
        return unavailable("recovering");
    }
    let bytes = match read_body(&app, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            "nurture::serve::bad-body",
            "the body is not UTF-8",
        );
    };
    let lines = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-ndjson"));
    let texts: Vec<&str> = if lines {
        text.lines().filter(|l| !l.trim().is_empty()).collect()
    } else {
        vec![text]
    };
    let mut records = Vec::with_capacity(texts.len());
    let mut bad = Vec::new();
    for (index, t) in texts.iter().enumerate() {
        match Posted::parse(t) {
            Ok(p) => records.push(p),
            Err(reason) => bad.push(BadRecord {
                index,
                field: None,
                reason,
            }),
        }
    }
    if !bad.is_empty() {
        metrics::counter!("nurture_events_refused_total").increment(bad.len() as u64);
        return refused_batch(&bad);
    }
    if records.is_empty() {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "accepted": 0, "at": [] })),
        )
            .into_response();
    }
    let answer = app.engine.ask(|reply| Cmd::Ingest { records, reply }).await;
    let response = match answer {
        None => stopped(),
        Some(Err(r)) => refusal(r),
        Some(Ok(Err(bad))) => refused_batch(&bad),
        Some(Ok(Ok(stamps))) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "accepted": stamps.len(), "at": stamps })),
        )
            .into_response(),
    };
    metrics::histogram!("nurture_accept_seconds").record(started.elapsed().as_secs_f64());
    response
}

/// `POST /v1/clock {"until": T}` or `{"drain": true}` (a virtual clock).
async fn clock(State(app): State<App>, body: Body) -> Response {
    let bytes = match read_body(&app, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let v: Json = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "nurture::input::bad-record",
                format!("malformed JSON: {e}"),
            )
        }
    };
    let until = match (&v["until"], &v["drain"]) {
        (Json::String(t), Json::Null) => match parse_datetime(t) {
            Some(t) => Some(t),
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "nurture::input::bad-record",
                    format!("`until` is not an RFC 3339 datetime: `{t}`"),
                )
            }
        },
        (Json::Null, Json::Bool(true)) => None,
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "nurture::input::bad-record",
                "the body is `{\"until\": DATETIME}` or `{\"drain\": true}`",
            )
        }
    };
    match app.engine.ask(|reply| Cmd::Clock { until, reply }).await {
        None => stopped(),
        Some(Err(r)) => refusal(r),
        Some(Ok(t)) => axum::Json(json!({ "clock": t.map(format_datetime) })).into_response(),
    }
}

async fn contact(State(app): State<App>, Path(id): Path<String>) -> Response {
    let shown = crate::suggest::echo(&id);
    match app.engine.ask(|reply| Cmd::Contact { id, reply }).await {
        None => stopped(),
        Some(None) => error(
            StatusCode::NOT_FOUND,
            "nurture::serve::unknown-contact",
            format!("no contact `{shown}`"),
        ),
        Some(Some(v)) => axum::Json(v).into_response(),
    }
}

async fn state(State(app): State<App>) -> Response {
    match app.engine.ask(|reply| Cmd::State { reply }).await {
        None => stopped(),
        Some(v) => axum::Json(v).into_response(),
    }
}

async fn report(app: &App, html: bool) -> Response {
    match app.engine.ask(|reply| Cmd::Report { html, reply }).await {
        None => stopped(),
        Some(text) => {
            let kind = if html {
                "text/html; charset=utf-8"
            } else {
                "application/json"
            };
            ([(header::CONTENT_TYPE, kind)], text).into_response()
        }
    }
}

async fn report_json(State(app): State<App>) -> Response {
    report(&app, false).await
}

async fn report_html(State(app): State<App>) -> Response {
    report(&app, true).await
}

#[derive(serde::Deserialize)]
struct ActionsQuery {
    partition: Option<u32>,
    after: Option<u64>,
    limit: Option<usize>,
    wait: Option<f64>,
}

/// `GET /v1/actions?after=ID&limit=N&wait=S`: JSON Lines.
async fn actions(
    State(app): State<App>,
    query: Result<Query<ActionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "nurture::serve::bad-query",
            "`after` and `limit` are whole numbers, `wait` seconds",
        );
    };
    let partition = match (app.shared.partitions, q.partition) {
        (None, None) => None,
        (Some(n), Some(p)) if p < n => Some(p),
        (Some(n), _) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "nurture::serve::bad-query",
                format!(
                    "`partition` is required, from 0 to {}: each partition numbers its own actions",
                    n - 1
                ),
            )
        }
        (None, Some(_)) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "nurture::serve::bad-query",
                "`partition` is for many machines (--store); this service has one state",
            )
        }
    };
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let wait = Duration::from_secs_f64(q.wait.unwrap_or(0.0).clamp(0.0, 30.0));
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = app.shared.outbox.subscribe();
    loop {
        changes.borrow_and_update();
        let rows = app
            .engine
            .ask(|reply| Cmd::Outbox {
                after: After::Action(after),
                limit,
                partition,
                reply,
            })
            .await;
        let Some(rows) = rows else {
            return stopped();
        };
        if !rows.is_empty() || tokio::time::Instant::now() >= deadline {
            let mut text = String::new();
            for r in rows {
                text.push_str(&r.line);
                text.push('\n');
            }
            return ([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response();
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            // Timed out: one last look, then an empty answer.
            continue;
        }
    }
}

/// `GET /v1/rejects`: records accepted, then refused by their partition.
async fn rejects(State(app): State<App>) -> Response {
    match app.engine.ask(|reply| Cmd::Rejects { reply }).await {
        None => stopped(),
        Some(text) => ([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response(),
    }
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "up" })).into_response()
}

async fn readyz(State(app): State<App>) -> Response {
    if app.shared.is_ready() {
        axum::Json(json!({ "ready": true })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ready": false })),
        )
            .into_response()
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "nurture::serve::not-found",
        "no such endpoint (see docs/serve.md)",
    )
}
