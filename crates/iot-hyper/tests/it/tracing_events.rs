//! The driver's `tracing` output: one span per call, events for logins, refreshes, retries and throttling, and
//! never a secret in a field or a message. Recorded by a small subscriber of our own (no extra dependency).

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use iot_proto::{ErrorCode, QueryUpgradeTask};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::support::{
    Kind, Platform, SECRET, SENTINEL, access_token, api_error, bounded, client, ok, operation, refresh_token, tokens,
};

/// Every span and event as one line of text: `span NAME field=value...` or `LEVEL field=value...`.
#[derive(Clone, Default)]
struct Recorder {
    next_id: Arc<AtomicU64>,
    lines: Arc<Mutex<Vec<String>>>,
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = Line(format!("span {}", span.metadata().name()));
        span.record(&mut line);
        self.lines.lock().unwrap().push(line.0);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = Line("record".to_owned());
        values.record(&mut line);
        self.lines.lock().unwrap().push(line.0);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line(event.metadata().level().to_string());
        event.record(&mut line);
        self.lines.lock().unwrap().push(line.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

// A current-thread runtime, so the thread-local subscriber sees the client's work.
#[tokio::test]
async fn a_call_logs_its_span_login_retries_and_throttling_but_no_secret() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    bounded(async {
        let platform = Platform::start(|call| match call.kind {
            Kind::Api if call.n == 0 => api_error(ErrorCode::InternalError, "try again"),
            Kind::Api if call.n == 1 => api_error(ErrorCode::Throttled, "over the call rate"),
            Kind::Api => ok::<QueryUpgradeTask>(&operation("op-1")),
            _ => tokens(call),
        })
        .await;
        let (client, _clock) = client(&platform);

        client.query_upgrade_task(&QueryUpgradeTask::new("op-1".parse().unwrap())).await.unwrap();
        client.renew_token().await.unwrap();
        platform.stop().await;
    })
    .await;

    let lines = recorder.lines.lock().unwrap().clone();
    let has = |needles: &[&str]| lines.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(has(&["span iot_call", "endpoint=\"QueryUpgradeTask\""]), "{lines:#?}");
    assert!(has(&["span iot_call", "endpoint=\"RenewToken\""]), "{lines:#?}");
    assert!(has(&["INFO", "token renewed", "purpose=Login", "generation=1"]), "{lines:#?}");
    assert!(has(&["INFO", "token renewed", "purpose=Refresh", "generation=2"]), "{lines:#?}");
    assert!(has(&["WARN", "retrying", "attempt=1", "delay_ms=", "reason=ServerTransient"]), "{lines:#?}");
    assert!(has(&["WARN", "retrying", "attempt=2", "reason=Throttled"]), "{lines:#?}");
    assert!(has(&["WARN", "throttled by the platform", "pause_ms="]), "{lines:#?}");
    assert!(has(&["DEBUG", "sending", "purpose=Request", "attempt=3", "method=GET"]), "{lines:#?}");
    // Neither the secret nor any token, in any field or message.
    for line in &lines {
        for secret in [SECRET, SENTINEL, &access_token(1), &access_token(2), &refresh_token(1), &refresh_token(2)] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}
