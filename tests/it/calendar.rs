//! Calendar time: time zones, daylight saving, and the waits computed when
//! they begin (`wait until HH:MM`, `wait until WEEKDAY [at HH:MM]`,
//! `wait until EXPR`, `wait EXPR`).

use crate::helpers::{
    diagnostics, run_program, run_program_in_parts, snapshot_body, stderr, stdout,
};

const PROGRAM: &str = r#"timezone "Europe/Madrid"

contact {
  email: string @channel(email)
  zone: string? @timezone
  opted_in: bool = true @consent(email)
  due: datetime?
  delay: duration = 90m
}

event clock {}
event weekly {}
event due_date {}
event pause {}

workflow at_half_past_two {  // nurture:allow(no-goal)
  when clock
  wait until 02:30
  if contact.opted_in {
    send email "half_past_two"
  }
}

workflow on_monday {  // nurture:allow(no-goal)
  when weekly
  wait until monday at 09:00
  if contact.opted_in {
    send email "monday"
  }
}

workflow on_the_due_date {  // nurture:allow(no-goal)
  when due_date
  if contact.due is set {
    wait until contact.due
    if contact.opted_in {
      send email "due"
    }
  }
}

workflow after_a_pause {  // nurture:allow(no-goal)
  when pause
  wait contact.delay
  if contact.opted_in {
    send email "paused"
  }
}
"#;

fn created(at: &str, c: &str, extra: &str) -> String {
    format!(
        r#"{{"at":"{at}","contact":"{c}","type":"contact_created","attributes":{{"email":"{c}@x.com"{extra}}}}}"#
    )
}

fn event(at: &str, c: &str, ty: &str) -> String {
    format!(r#"{{"at":"{at}","contact":"{c}","type":"{ty}"}}"#)
}

/// The sends of a run, as `time contact template`.
fn sends(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            // A send by its template; a trace record by its kind and its
            // template or reason.
            let what = match v["action"].as_str() {
                Some("send") => v["template"].as_str().unwrap_or("").to_string(),
                Some(a) => format!(
                    "{a} {}",
                    v["template"]
                        .as_str()
                        .or(v["reason"].as_str())
                        .unwrap_or("")
                ),
                None => String::new(),
            };
            format!(
                "{} {} {what}",
                v["at"].as_str().unwrap_or(""),
                v["contact"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Runs the events whole and in three parts with one state; both must
/// give the same output. Returns the sends.
fn run(events: &[String]) -> Vec<String> {
    run_with(PROGRAM, events, &["--drain"])
}

fn run_with(program: &str, events: &[String], flags: &[&str]) -> Vec<String> {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    let o = run_program(program, &text, flags);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let whole = stdout(&o);
    let n = events.len();
    let parts = run_program_in_parts(program, &text, flags, &[n / 3, 2 * n / 3]);
    let joined: String = parts.iter().map(stdout).collect();
    assert_eq!(joined, whole, "a run in parts differs");
    sends(&whole)
}

/// Madrid springs forward on 2026-03-29 (02:00 CET becomes 03:00 CEST):
/// 02:30 does not exist and means 03:00 CEST, 01:00 UTC. New York springs
/// forward on 2026-03-08 (02:00 EST becomes 03:00 EDT): 07:00 UTC.
#[test]
fn a_missing_local_time_is_the_end_of_the_gap() {
    let got = run(&[
        created(
            "2026-03-07T00:00:00Z",
            "ny",
            r#","zone":"America/New_York""#,
        ),
        event("2026-03-08T06:00:00Z", "ny", "clock"),
        created("2026-03-28T23:00:00Z", "ana", ""),
        event("2026-03-28T23:00:00Z", "ana", "clock"),
    ]);
    assert_eq!(
        got,
        [
            "2026-03-08T07:00:00Z ny half_past_two",
            "2026-03-29T01:00:00Z ana half_past_two",
        ]
    );
}

/// Madrid falls back on 2026-10-25 (03:00 CEST becomes 02:00 CET): 02:30
/// happens at 00:30 and 01:30 UTC; the first counts, and a wait begun
/// between the two goes on to the next day's 02:30 CET (01:30 UTC).
#[test]
fn a_repeated_local_time_is_its_first_occurrence() {
    let got = run(&[
        created("2026-10-24T23:00:00Z", "early", ""),
        event("2026-10-24T23:00:00Z", "early", "clock"),
        created("2026-10-25T01:00:00Z", "between", ""),
        event("2026-10-25T01:00:00Z", "between", "clock"),
    ]);
    assert_eq!(
        got,
        [
            "2026-10-25T00:30:00Z early half_past_two",
            "2026-10-26T01:30:00Z between half_past_two",
        ]
    );
}

/// Three zones at one instant, and a zone no one knows (the program's).
#[test]
fn each_contact_waits_in_its_own_zone() {
    let at = "2026-01-10T10:00:00Z"; // a Saturday
    let got = run(&[
        created(at, "madrid", ""),
        created(at, "tokyo", r#","zone":"Asia/Tokyo""#),
        created(at, "ny", r#","zone":"America/New_York""#),
        created(at, "mars", r#","zone":"Mars/Olympus""#),
        event(at, "madrid", "clock"),
        event(at, "tokyo", "clock"),
        event(at, "ny", "clock"),
        event(at, "mars", "clock"),
        event(at, "madrid", "weekly"),
        event(at, "tokyo", "weekly"),
        event(at, "ny", "weekly"),
    ]);
    assert_eq!(
        got,
        [
            // Tokyo (UTC+9): 19:00 Saturday; 02:30 Sunday is 17:30 UTC.
            "2026-01-10T17:30:00Z tokyo half_past_two",
            // Madrid (UTC+1) and Mars (unknown: the program's zone): 02:30
            // Sunday is 01:30 UTC; New York (UTC-5): 07:30 UTC.
            "2026-01-11T01:30:00Z madrid half_past_two",
            "2026-01-11T01:30:00Z mars half_past_two",
            "2026-01-11T07:30:00Z ny half_past_two",
            // Monday 09:00: Tokyo 00:00 UTC, Madrid 08:00, New York 14:00.
            "2026-01-12T00:00:00Z tokyo monday",
            "2026-01-12T08:00:00Z madrid monday",
            "2026-01-12T14:00:00Z ny monday",
        ]
    );
}

/// `wait until EXPR` and `wait EXPR`: a time in the future is waited for;
/// one not in the future, or an instant of 02:30 itself, does not suspend.
#[test]
fn waits_computed_from_the_contact() {
    let got = run(&[
        created(
            "2026-04-30T00:00:00Z",
            "later",
            r#","due":"2026-05-01T12:00:00Z""#,
        ),
        created(
            "2026-04-30T00:00:00Z",
            "past",
            r#","due":"2026-04-01T12:00:00Z""#,
        ),
        created("2026-04-30T00:00:00Z", "none", ""),
        created("2026-04-30T00:00:00Z", "slow", r#","delay":10800"#),
        event("2026-04-30T00:00:00Z", "later", "due_date"),
        event("2026-04-30T00:00:00Z", "past", "due_date"),
        event("2026-04-30T00:00:00Z", "none", "due_date"),
        event("2026-04-30T00:00:00Z", "past", "pause"),
        event("2026-04-30T00:00:00Z", "slow", "pause"),
        // 02:30 in Madrid (CEST) is 00:30 UTC: exactly now, no wait.
        event("2026-04-30T00:30:00Z", "none", "clock"),
    ]);
    assert_eq!(
        got,
        [
            "2026-04-30T00:00:00Z past due",
            "2026-04-30T00:30:00Z none half_past_two",
            "2026-04-30T01:30:00Z past paused",
            "2026-04-30T03:00:00Z slow paused",
            "2026-05-01T12:00:00Z later due",
        ]
    );
}

macro_rules! calendar_snap {
    ($name:ident, $code:expr, $body:expr) => {
        #[test]
        fn $name() {
            let (diags, _) = diagnostics($body);
            let codes: Vec<_> = diags.iter().map(|d| d.code.as_str()).collect();
            assert_eq!(codes, [$code], "{diags:#?}");
            insta::assert_snapshot!(stringify!($name), snapshot_body($body));
        }
    };
}

calendar_snap!(
    clock_time_past_23_59,
    "nurture::type::bad-clock-time",
    "contact {\n  email: string @channel(email)\n}\n\nevent go {}\n\nworkflow w {  // nurture:allow(no-goal)\n  when go\n  wait until 24:00\n}\n"
);
calendar_snap!(
    timezone_on_a_number,
    "nurture::type::bad-annotation",
    "contact {\n  email: string @channel(email)\n  zone: int @timezone\n}\n"
);
calendar_snap!(
    unknown_timezone,
    "nurture::type::unknown-timezone",
    "timezone \"America/New_Yrok\"\n\ncontact {\n  email: string @channel(email)\n}\n"
);
calendar_snap!(
    wait_until_a_number,
    "nurture::type::mismatch",
    "contact {\n  email: string @channel(email)\n  score: int = 0\n}\n\nevent go {}\n\nworkflow w {  // nurture:allow(no-goal)\n  when go\n  wait until contact.score\n}\n"
);
calendar_snap!(
    wait_a_datetime,
    "nurture::type::mismatch",
    "contact {\n  email: string @channel(email)\n}\n\nevent go {}\n\nworkflow w {  // nurture:allow(no-goal)\n  when go\n  wait now\n}\n"
);

/// The same waits through `nurture test`, with a duration literal in a step.
#[test]
fn calendar_waits_in_a_test_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = format!(
        r#"{PROGRAM}
test "a contact in Tokyo waits in Tokyo" {{
  at @2026-01-10T10:00:00Z
  contact kai {{ email: "kai@x.com", zone: "Asia/Tokyo", delay: 3h }}
  event kai clock
  event kai pause
  advance 3h
  expect kai: send email "paused" at @2026-01-10T13:00:00Z
  at @2026-01-10T17:30:00Z
  expect kai: send email "half_past_two" at @2026-01-10T17:30:00Z
  expect kai: nothing else
}}
"#
    );
    std::fs::write(dir.path().join("p.flow"), program).expect("write");
    let o = crate::helpers::bin()
        .current_dir(dir.path())
        .args(["test", "p.flow"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

const RULES: &str = r#"timezone "Europe/Madrid"

contact {
  email: string @channel(email)
  phone: string? @channel(sms)
  zone: string? @timezone
  opted_in: bool = true @consent(email, sms)
}

event go {}
event again {}

quiet hours 21:00 to 08:00 for sms
limit email to 2 per 1d

workflow first {  // nurture:allow(no-goal)
  when go
  reenter always
  send email "first_1"
  if contact.phone is set {
    send sms "first_sms"
  }
  send email "first_2"
  send email "first_3"
}

workflow second {  // nurture:allow(no-goal)
  when again
  reenter always
  send email "second"
}
"#;

/// Quiet hours cross midnight and hold an SMS until the window ends, in
/// the contact's zone; the held send is judged again when released.
#[test]
fn quiet_hours_hold_a_send_until_the_window_ends() {
    let got = run_with(
        RULES,
        &[
            // 22:30 in Madrid: inside; released at 08:00 local, 07:00 UTC.
            created("2026-01-05T21:30:00Z", "ana", r#","phone":"+34600000001""#),
            event("2026-01-05T21:30:00Z", "ana", "go"),
            // 16:30 in New York: outside, sent at once.
            created(
                "2026-01-05T21:30:00Z",
                "ny",
                r#","phone":"+1555","zone":"America/New_York""#,
            ),
            event("2026-01-05T21:30:00Z", "ny", "go"),
            // Opted out while held: at release, consent suppresses it.
            created("2026-01-05T21:30:00Z", "out", r#","phone":"+34600000002""#),
            event("2026-01-05T21:30:00Z", "out", "go"),
            r#"{"at":"2026-01-06T06:00:00Z","contact":"out","type":"contact_updated","attributes":{"opted_in":false}}"#
                .to_string(),
        ],
        &["--drain"],
    );
    assert_eq!(
        got,
        [
            "2026-01-05T21:30:00Z ana first_1",
            "2026-01-05T21:30:00Z ny first_1",
            "2026-01-05T21:30:00Z ny first_sms",
            "2026-01-05T21:30:00Z ny first_2",
            "2026-01-05T21:30:00Z out first_1",
            "2026-01-06T07:00:00Z ana first_sms",
            "2026-01-06T07:00:00Z ana first_2",
        ]
    );
}

/// A frequency cap counts the sends of every workflow in [now - D, now]:
/// the third email of a day is suppressed (and traced), and a send exactly
/// a day after the first still counts it.
#[test]
fn a_frequency_cap_counts_every_workflow_in_its_window() {
    let trace = run_with(
        RULES,
        &[
            created("2026-01-05T12:00:00Z", "ana", ""),
            event("2026-01-05T12:00:00Z", "ana", "go"),
            // Exactly a day after first_1: first_1 and first_2 still count.
            event("2026-01-06T12:00:00Z", "ana", "again"),
            // A minute later first_1 has left the window.
            event("2026-01-06T12:01:00Z", "ana", "again"),
        ],
        &["--drain", "--trace"],
    );
    let lines: Vec<&String> = trace
        .iter()
        .filter(|l| !l.ends_with(' ') && !l.contains(" enter ") && !l.contains(" end "))
        .collect();
    assert_eq!(
        lines,
        [
            "2026-01-05T12:00:00Z ana first_1",
            "2026-01-05T12:00:00Z ana first_2",
            "2026-01-05T12:00:00Z ana suppressed first_3",
            "2026-01-06T12:00:00Z ana suppressed second",
            "2026-01-06T12:01:00Z ana second",
        ]
    );
}

/// The order at a send: consent, then the cap, then quiet hours. An SMS
/// held by quiet hours and a capped email at once: the email is suppressed
/// at once, the SMS waits.
#[test]
fn consent_then_cap_then_quiet_hours() {
    let program = RULES.replace(
        "limit email to 2 per 1d",
        "limit email to 2 per 1d\nlimit sms to 1 per 1w",
    );
    let got = run_with(
        &program,
        &[
            created("2026-01-05T21:30:00Z", "ana", r#","phone":"+34600000001""#),
            event("2026-01-05T21:30:00Z", "ana", "go"),
            // A second SMS the same week: capped before quiet hours hold it.
            event("2026-01-06T22:00:00Z", "ana", "go"),
        ],
        &["--drain", "--trace"],
    );
    let held: Vec<&String> = got
        .iter()
        .filter(|l| l.contains("sms") || l.contains("wait"))
        .collect();
    assert_eq!(
        held,
        [
            "2026-01-05T21:30:00Z ana wait quiet_hours",
            "2026-01-06T07:00:00Z ana first_sms",
            "2026-01-06T22:00:00Z ana suppressed first_sms",
        ]
    );
}

calendar_snap!(
    limit_on_an_unknown_channel,
    "nurture::type::unknown-channel",
    "contact {\n  email: string @channel(email)\n}\n\nlimit emial to 2 per 1d\n"
);
calendar_snap!(
    quiet_hours_twice_for_a_channel,
    "nurture::type::duplicate-name",
    "contact {\n  email: string @channel(email)\n  phone: string? @channel(sms)\n}\n\nquiet hours 21:00 to 08:00 for sms\nquiet hours 22:00 to 07:00 for sms, push\n"
);

/// A zone name no one knows falls back to the program's zone, and the
/// summary counts the contacts it happened to.
#[test]
fn unknown_zones_are_counted() {
    let events = [
        created("2026-01-10T10:00:00Z", "mars", r#","zone":"Mars/Olympus""#),
        created("2026-01-10T10:00:00Z", "tokyo", r#","zone":"Asia/Tokyo""#),
        created("2026-01-10T10:00:00Z", "none", ""),
    ];
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    let o = run_program(PROGRAM, &text, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("contacts whose time zone is unknown (the program's zone was used): 1"),
        "{}",
        stderr(&o)
    );
}

const SCHEDULES: &str = r#"timezone "Europe/Madrid"

contact {
  email: string @channel(email)
  zone: string? @timezone
  opted_in: bool = true @consent(email)
  birthday: datetime?
  plan: "free" | "paid" = "free"
}

event ping {}

workflow daily {  // nurture:allow(no-goal)
  when every day at 09:00 where contact.plan == "free"
  reenter always
  send email "daily"
}

workflow birthday {  // nurture:allow(no-goal)
  when every year on contact.birthday at 10:00
  reenter always
  send email "happy_birthday"
}

workflow monthly {  // nurture:allow(no-goal)
  when every month on 28 at 02:30
  reenter always
  send email "monthly"
}

workflow mondays {  // nurture:allow(no-goal)
  when every monday at 09:00
  reenter always
  send email "monday"
}
"#;

/// Daily, yearly (Feb 29 on Feb 28), monthly (day 28, the end of
/// February) and weekly occurrences in three zones; a `where` keeps paid
/// contacts out; the run in three parts with one state gives the same.
#[test]
fn scheduled_triggers_in_three_zones() {
    let got = run_with(
        SCHEDULES,
        &[
            created(
                "2026-02-27T07:00:00Z",
                "ana",
                r#","birthday":"1990-03-01T12:00:00Z""#,
            ),
            created(
                "2026-02-27T07:00:00Z",
                "ny",
                r#","zone":"America/New_York""#,
            ),
            created(
                "2026-02-27T07:00:00Z",
                "kai",
                r#","zone":"Asia/Tokyo","plan":"paid""#,
            ),
            created(
                "2026-02-27T07:00:00Z",
                "pat",
                r#","plan":"paid","birthday":"2000-02-29T12:00:00Z""#,
            ),
            event("2026-03-01T12:00:00Z", "ana", "ping"),
        ],
        &["--until", "2026-03-02T12:00:00Z"],
    );
    assert_eq!(
        got,
        [
            // Feb 27, 09:00: Madrid 08:00 UTC, New York 14:00 UTC.
            "2026-02-27T08:00:00Z ana daily",
            "2026-02-27T14:00:00Z ny daily",
            // Feb 28 02:30: Tokyo 17:30 UTC of the 27th, Madrid 01:30 UTC,
            // New York 07:30 UTC.
            "2026-02-27T17:30:00Z kai monthly",
            "2026-02-28T01:30:00Z ana monthly",
            "2026-02-28T01:30:00Z pat monthly",
            "2026-02-28T07:30:00Z ny monthly",
            "2026-02-28T08:00:00Z ana daily",
            // Pat's Feb 29 falls on Feb 28 in 2026, at 10:00 Madrid.
            "2026-02-28T09:00:00Z pat happy_birthday",
            "2026-02-28T14:00:00Z ny daily",
            "2026-03-01T08:00:00Z ana daily",
            "2026-03-01T09:00:00Z ana happy_birthday",
            "2026-03-01T14:00:00Z ny daily",
            // Monday Mar 2, 09:00: Tokyo 00:00 UTC, Madrid 08:00 UTC.
            "2026-03-02T00:00:00Z kai monday",
            "2026-03-02T08:00:00Z ana daily",
            "2026-03-02T08:00:00Z ana monday",
            "2026-03-02T08:00:00Z pat monday",
        ]
    );
}

/// An occurrence at an event's instant comes first: a contact the event
/// creates is not known to it. `--drain` fires no occurrence after the last
/// input; `--until` runs the schedules to its time.
#[test]
fn occurrences_come_before_events_and_drain_stops_at_the_last_input() {
    let events = [
        created("2026-03-02T07:00:00Z", "early", ""),
        // 09:00 Madrid is 08:00 UTC: "late" is created at that instant.
        created("2026-03-02T08:00:00Z", "late", ""),
    ];
    let drained = run_with(SCHEDULES, &events, &["--drain"]);
    assert_eq!(
        drained,
        [
            "2026-03-02T08:00:00Z early daily",
            "2026-03-02T08:00:00Z early monday",
        ]
    );
    let until = run_with(SCHEDULES, &events, &["--until", "2026-03-03T09:00:00Z"]);
    assert_eq!(
        until,
        [
            "2026-03-02T08:00:00Z early daily",
            "2026-03-02T08:00:00Z early monday",
            "2026-03-03T08:00:00Z early daily",
            "2026-03-03T08:00:00Z late daily",
        ]
    );
}

calendar_snap!(
    month_on_31,
    "nurture::type::bad-clock-time",
    "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal)\n  when every month on 31 at 09:00\n}\n"
);
calendar_snap!(
    year_on_a_string,
    "nurture::type::mismatch",
    "contact {\n  email: string @channel(email)\n}\n\nworkflow w {  // nurture:allow(no-goal)\n  when every year on contact.email at 09:00\n}\n"
);

const TRIAL: &str = r#"contact {
  email: string @channel(email)
  opted_in: bool = true @consent(email)
  trial_ends_at: datetime?
}

event ping {}

workflow trial_ending {  // nurture:allow(no-goal)
  when at contact.trial_ends_at - 3d
  reenter always
  send email "trial_ends_soon"
}
"#;

/// A date trigger: the contact enters when the clock reaches the instant
/// computed from its fields, computed again when they change (the old
/// instant no longer fires); one already past fires nothing, an unset field
/// sets nothing.
#[test]
fn date_triggers() {
    let at = "2026-03-01T00:00:00Z";
    let got = run_with(
        TRIAL,
        &[
            created(at, "ana", r#","trial_ends_at":"2026-03-10T12:00:00Z""#),
            created(at, "past", r#","trial_ends_at":"2026-03-02T00:00:00Z""#),
            created(at, "unset", ""),
            r#"{"at":"2026-03-02T00:00:00Z","contact":"unset","type":"contact_updated","attributes":{"trial_ends_at":"2026-03-20T00:00:00Z"}}"#.to_string(),
            r#"{"at":"2026-03-03T00:00:00Z","contact":"ana","type":"contact_updated","attributes":{"trial_ends_at":"2026-03-12T12:00:00Z"}}"#.to_string(),
            event("2026-03-04T00:00:00Z", "ana", "ping"),
        ],
        &["--drain"],
    );
    assert_eq!(
        got,
        [
            "2026-03-09T12:00:00Z ana trial_ends_soon",
            "2026-03-17T00:00:00Z unset trial_ends_soon",
        ]
    );
}

calendar_snap!(
    when_at_a_number,
    "nurture::type::mismatch",
    "contact {\n  email: string @channel(email)\n  score: int = 0\n}\n\nworkflow w {  // nurture:allow(no-goal)\n  when at contact.score\n}\n"
);

/// A daily occurrence at 02:30 in Madrid across both changes of 2026: on
/// the spring-forward day it comes when the gap ends (03:00 CEST), on the
/// fall-back day at the first 02:30 only.
#[test]
fn scheduled_occurrences_across_daylight_saving() {
    let program = SCHEDULES.replace(
        "when every day at 09:00 where contact.plan == \"free\"",
        "when every day at 02:30 where contact.plan == \"free\"",
    );
    let spring = run_with(
        &program,
        &[
            created("2026-03-27T12:00:00Z", "ana", ""),
            event("2026-03-30T12:00:00Z", "ana", "ping"),
        ],
        &[],
    );
    let daily: Vec<&String> = spring.iter().filter(|l| l.ends_with(" daily")).collect();
    assert_eq!(
        daily,
        [
            "2026-03-28T01:30:00Z ana daily",
            "2026-03-29T01:00:00Z ana daily",
            "2026-03-30T00:30:00Z ana daily",
        ]
    );
    let autumn = run_with(
        &program,
        &[
            created("2026-10-23T12:00:00Z", "ana", ""),
            event("2026-10-26T12:00:00Z", "ana", "ping"),
        ],
        &[],
    );
    let daily: Vec<&String> = autumn.iter().filter(|l| l.ends_with(" daily")).collect();
    assert_eq!(
        daily,
        [
            "2026-10-24T00:30:00Z ana daily",
            "2026-10-25T00:30:00Z ana daily",
            "2026-10-26T01:30:00Z ana daily",
        ]
    );
}

const DAILY: &str = r#"contact {
  email: string @channel(email)
  renews_at: datetime?
}

workflow daily {  // nurture:allow(no-goal, unfiltered-schedule)
  when every day at 09:00
  reenter always
  send email "digest"
}

workflow renewal {  // nurture:allow(no-goal)
  when at contact.renews_at - 1d
  send email "renewal_reminder"
}
"#;

/// In `nurture test` the clock has started at 2026-01-01T00:00:00Z: a
/// schedule and a date trigger fire for `given` contacts, with no event.
#[test]
fn schedules_fire_for_given_contacts_in_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = format!(
        r#"{DAILY}
test "a preloaded contact gets the digest" {{
  given ana {{ email: "ana@x.com", renews_at: @2026-01-03T12:00:00Z }}
  advance 1d
  expect ana: send email "digest" at @2026-01-01T09:00:00Z
  expect ana: no send email "renewal_reminder"
  advance 1d
  expect ana: send email "digest" at @2026-01-02T09:00:00Z
  expect ana: send email "renewal_reminder" at @2026-01-02T12:00:00Z
  expect ana: nothing else
}}
"#
    );
    std::fs::write(dir.path().join("p.flow"), program).expect("write");
    let o = crate::helpers::bin()
        .current_dir(dir.path())
        .args(["test", "p.flow"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 passed, 0 failed"), "{}", stdout(&o));
}

/// The cron pattern of a contacts import: `--contacts` with `--state` and
/// `--until`, no events. The first run starts the clock at its `--until`
/// (an occurrence at exactly T fires); the next run's `--until` fires the
/// occurrences after T, each once.
#[test]
fn a_run_without_events_starts_the_clock_at_until() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (prog, contacts, db) = (
        dir.path().join("p.flow"),
        dir.path().join("c.jsonl"),
        dir.path().join("s.db"),
    );
    std::fs::write(&prog, DAILY).expect("write");
    std::fs::write(
        &contacts,
        "{\"id\":\"ana\",\"email\":\"ana@x.com\"}\n{\"id\":\"bo\",\"email\":\"bo@x.com\",\"renews_at\":\"2026-01-05T10:00:00Z\"}\n",
    )
    .expect("write");
    let run = |until: &str, with_contacts: bool| {
        let mut cmd = crate::helpers::bin();
        cmd.arg("run").arg(&prog).arg("--state").arg(&db);
        if with_contacts {
            cmd.arg("--contacts").arg(&contacts);
        }
        let o = cmd.args(["--until", until]).output().expect("runs");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        sends(&stdout(&o))
    };
    let first = run("2026-01-02T09:00:00Z", true);
    assert_eq!(
        first,
        [
            "2026-01-02T09:00:00Z ana digest",
            "2026-01-02T09:00:00Z bo digest"
        ]
    );
    let inspect = crate::helpers::bin()
        .args(["inspect", "--state"])
        .arg(&db)
        .args(["--format", "json"])
        .output()
        .expect("runs");
    let state: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("json");
    assert_eq!(state["clock"], "2026-01-02T09:00:00Z");
    let second = run("2026-01-04T10:00:00Z", false);
    assert_eq!(
        second,
        [
            "2026-01-03T09:00:00Z ana digest",
            "2026-01-03T09:00:00Z bo digest",
            "2026-01-04T09:00:00Z ana digest",
            "2026-01-04T09:00:00Z bo digest",
            "2026-01-04T10:00:00Z bo renewal_reminder",
        ]
    );
}
