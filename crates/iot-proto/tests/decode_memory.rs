//! Peak heap of decoding adversarial answers: no body, whatever its shape, decodes into more than
//! [`K`] times its length. A test binary of its own, because it counts every allocation of the process through
//! its global allocator; the tests take a lock so that each measures only itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::sync::Mutex;

use http::StatusCode;
use iot_proto::client::parse_response;
use iot_proto::{
    DecodeErrorKind, Endpoint, FromHttpResponseError, QueryBatchTask, QueryTaskDetails, QueryUpgradeTask,
    QueryUpgradeTaskList,
};
use peak_alloc::PeakAlloc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// One measurement at a time: the counters are the process's.
static SERIAL: Mutex<()> = Mutex::new(());

/// The bound: the heap a decode adds at its peak, at most `K` times the body's length. The counter is strict:
/// a `realloc` counts the old and the new block together.
const K: usize = 8;

/// Adversarial bodies are about this long (a quarter of the drivers' 16 MiB cap: big enough that the budget's
/// 1 MiB floor and the at most 101 items of a page are noise, small enough for a debug build).
const SIZE: usize = 4 << 20;

/// What one decode did: the heap it added at its peak, and the answer.
struct Measured<T> {
    peak: usize,
    len: usize,
    result: Result<T, FromHttpResponseError>,
}

/// Decodes `body` as the answer of `E` under `status`, and measures the heap the decode adds at its peak.
fn measure<E: Endpoint>(status: StatusCode, body: String) -> Measured<E::Response> {
    let len = body.len();
    let response = http::Response::builder().status(status).body(body.into_bytes()).unwrap();
    let base = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let result = parse_response::<E, _>(&response);
    let peak = HEAP.peak_usage().saturating_sub(base);
    drop(response);
    Measured { peak, len, result }
}

/// Asserts the bound, and prints the figure for `docs/performance.md`.
fn assert_bounded<T>(shape: &str, m: &Measured<T>) {
    let ratio = m.peak as f64 / m.len as f64;
    println!("{shape}: body {} bytes, peak {} bytes, {ratio:.2}x", m.len, m.peak);
    assert!(m.peak <= K * m.len, "{shape}: the decode peaked at {ratio:.2}x the body ({} of {} bytes)", m.peak, m.len);
}

/// `count` copies of `item`, comma-separated, so that the result is about `SIZE` bytes.
fn repeat(item: &str) -> String {
    let count = SIZE / (item.len() + 1);
    let mut out = String::with_capacity(SIZE + item.len());
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out
}

fn decode_kind<T>(m: &Measured<T>) -> Option<DecodeErrorKind> {
    match &m.result {
        Err(FromHttpResponseError::Decode(e)) => Some(e.kind),
        _ => None,
    }
}

#[test]
fn a_page_of_millions_of_tiny_items_is_refused_at_the_item_past_the_largest_page() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let oversized = Some(DecodeErrorKind::OversizedPage { max: 100 });
    // Items that do not read (the slow path), items that do (the fast path), and the batch family's pages.
    let m = measure::<QueryUpgradeTaskList>(StatusCode::OK, format!(r#"{{"data":[{}]}}"#, repeat("{}")));
    assert_bounded("page of {} items", &m);
    assert_eq!(decode_kind(&m), oversized);
    let m = measure::<QueryUpgradeTaskList>(
        StatusCode::OK,
        format!(r#"{{"totalCount":1,"date":[{}]}}"#, repeat(r#"{"operationId":"a"}"#)),
    );
    assert_bounded("page of minimal readable items", &m);
    assert_eq!(decode_kind(&m), oversized);
    let m = measure::<QueryTaskDetails>(StatusCode::OK, format!(r#"{{"taskDetails":[{}]}}"#, repeat("0")));
    assert_bounded("page of 0 items", &m);
    assert_eq!(decode_kind(&m), Some(DecodeErrorKind::OversizedPage { max: 250 }));
}

#[test]
fn free_form_members_of_tiny_values_are_refused_past_the_decode_budget() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut keys = String::with_capacity(SIZE + 32);
    let mut n = 0u32;
    while keys.len() < SIZE {
        if n > 0 {
            keys.push(',');
        }
        let _ = write!(keys, r#""{n:x}":0"#);
        n += 1;
    }
    let nest = format!("{}0{}", "[".repeat(100), "]".repeat(100));
    let nested_objects = format!("{}0{}", r#"{"a":"#.repeat(100), "}".repeat(100));
    let shapes = [
        ("free-form array of 0", format!(r#"{{"param":{{"k":[{}]}}}}"#, repeat("0"))),
        ("free-form array of {}", format!(r#"{{"param":{{"k":[{}]}}}}"#, repeat("{}"))),
        ("free-form object of tiny keys", format!(r#"{{"param":{{{keys}}}}}"#)),
        ("free-form array of one-member objects", format!(r#"{{"param":{{"k":[{}]}}}}"#, repeat(r#"{"a":0}"#))),
        ("free-form one-member objects nested", format!(r#"{{"param":{{"k":[{}]}}}}"#, repeat(&nested_objects))),
        ("free-form deep nests", format!(r#"{{"param":{{"k":[{}]}}}}"#, repeat(&nest))),
        ("free-form object escaped in a string", format!(r#"{{"param":"{{\"k\":[{}]}}"}}"#, repeat("0"))),
        ("free text sent as an array of 0", format!(r#"{{"operator":[{}]}}"#, repeat("0"))),
    ];
    for (shape, body) in shapes {
        let m = measure::<QueryBatchTask>(StatusCode::OK, body);
        assert_bounded(shape, &m);
        assert!(
            matches!(decode_kind(&m), Some(DecodeErrorKind::OverBudget { .. })),
            "{shape}: {:?}",
            m.result.as_ref().err()
        );
    }
    // A page whose one item carries the free-form tree: the budget spans the whole answer.
    let body = format!(r#"{{"data":[{{"operationId":"a","extendPara":{{"k":[{}]}}}}]}}"#, repeat("0"));
    let m = measure::<QueryUpgradeTaskList>(StatusCode::OK, body);
    assert_bounded("page item with a free-form array of 0", &m);
    assert!(matches!(decode_kind(&m), Some(DecodeErrorKind::OverBudget { .. })), "{:?}", m.result.err());
}

#[test]
fn typed_lists_of_tiny_elements_are_refused_past_the_decode_budget() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (shape, element) in [("list of empty strings", r#""""#), ("list of one-letter device ids", r#""a""#)] {
        let member = if element.len() == 2 { "deviceGroups" } else { "devices" };
        let body = format!(r#"{{"operationId":"a","targets":{{"{member}":[{}]}}}}"#, repeat(element));
        let m = measure::<QueryUpgradeTask>(StatusCode::OK, body);
        assert_bounded(shape, &m);
        assert!(matches!(decode_kind(&m), Some(DecodeErrorKind::OverBudget { .. })), "{shape}: {:?}", m.result.err());
    }
}

#[test]
fn long_strings_decode_within_the_bound() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let long = "x".repeat(SIZE);
    let m = measure::<QueryBatchTask>(StatusCode::OK, format!(r#"{{"taskId":"t","param":{{"k":"{long}"}}}}"#));
    assert_bounded("free-form long string", &m);
    let escaped = repeat(r"\u0078");
    let m = measure::<QueryBatchTask>(StatusCode::OK, format!(r#"{{"taskId":"t","param":{{"k":"{escaped}"}}}}"#));
    assert_bounded("free-form long escaped string", &m);
    let m = measure::<QueryUpgradeTask>(
        StatusCode::OK,
        format!(r#"{{"operationId":"a","targets":{{"deviceType":"{long}"}}}}"#),
    );
    assert_bounded("free text long string", &m);
    assert!(m.result.is_ok(), "{:?}", m.result.err());
}

#[test]
fn an_error_body_of_any_size_is_probed_without_building_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let body = format!(r#"{{"junk":[{}],"error_code":"100217","error_desc":"x"}}"#, repeat("{}"));
    let m = measure::<QueryUpgradeTask>(StatusCode::INTERNAL_SERVER_ERROR, body.clone());
    assert_bounded("error object with junk (500)", &m);
    assert!(matches!(&m.result, Err(FromHttpResponseError::Api(e)) if e.description.as_deref() == Some("x")));
    let m = measure::<QueryUpgradeTask>(StatusCode::OK, body);
    assert_bounded("error object with junk (200)", &m);
    assert!(matches!(&m.result, Err(FromHttpResponseError::Api(e)) if e.description.as_deref() == Some("x")));
}
