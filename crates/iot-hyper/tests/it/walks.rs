//! The paged-walk adapters against scripted servers: the hand-driven `PageWalk` and its `outcome`, the `pages`
//! stream agreeing with it, and the `items` stream (unreadable items in place, the walk's error last).
//!
//! Walk integrity itself (every way pages can fail to add up, the page guard) is iot-proto's `PageWalker`,
//! asserted by its unit tests and iot-sim's `choreography` tests.

use futures_util::{StreamExt, TryStreamExt};
use http::Response;
use iot_hyper::{Client, Error, WalkOutcomeError};
use iot_model::OperationPage;
use iot_proto::QueryUpgradeTaskList;
use iot_proto::pager::{StopReason, WalkError};

use crate::support::{Call, Kind, Platform, RecordingSleeper, bounded, client, config, ok, operation, tokens};

/// What a scripted listing does with the page asked for.
#[derive(Clone, Copy)]
enum Script {
    /// `total` items, served faithfully.
    Faithful { total: usize },
    /// Serves page 0 whatever is asked, echoing `pageNo` 0.
    IgnoresPageNoEchoingZero,
}

fn answer(call: &Call, script: Script) -> Response<Vec<u8>> {
    let asked: usize = call.query("pageNo").unwrap().parse().unwrap();
    let size: usize = call.query("pageSize").unwrap().parse().unwrap();
    let (page_no, total, served, size_served) = match script {
        Script::Faithful { total } => (Some(asked), Some(total), asked, size),
        Script::IgnoresPageNoEchoingZero => (Some(0), Some(1000), 0, size),
    };
    let end = total.unwrap_or(usize::MAX);
    let start = (served * size).min(end);
    let stop = (start + size_served).min(end);
    let mut page = OperationPage::new().with_page_size(size as u32);
    page.page_no = page_no.map(|n| n as u32);
    page.total_count = total.map(|t| t as u64);
    page.data = (start..stop).map(|i| operation(&format!("op-{i}"))).collect();
    ok::<QueryUpgradeTaskList>(&page)
}

/// Walks a scripted listing with pages of 10 and a guard of 8 pages: every yielded page, and the outcome.
async fn walk(
    script: Script,
) -> (Vec<Result<OperationPage, Error>>, Option<Result<StopReason, WalkOutcomeError>>, usize) {
    let platform = Platform::start(move |call| match call.kind {
        Kind::Api => answer(call, script),
        _ => tokens(call),
    })
    .await;
    let sleeper = RecordingSleeper::default();
    let client = Client::new(config(&platform.base_url(), &sleeper).with_max_pages(8)).unwrap();
    let mut walk = client.walk(QueryUpgradeTaskList::new().with_page_size(10));
    let mut pages = Vec::new();
    while let Some(page) = walk.next_page().await {
        pages.push(page);
        assert!(pages.len() <= 20, "the walk does not stop");
    }
    let outcome = walk.outcome();
    // The stream form ends the same way: its last item is the same error, or no error at all.
    let streamed: Vec<_> = client.pages(QueryUpgradeTaskList::new().with_page_size(10)).collect().await;
    assert_eq!(streamed.len(), pages.len());
    assert_eq!(streamed.last().map(Result::is_ok), pages.last().map(Result::is_ok));
    let requests = platform.log().count(Kind::Api) / 2;
    platform.stop().await;
    (pages, outcome, requests)
}

fn walk_error(pages: &[Result<OperationPage, Error>]) -> WalkError {
    assert!(pages[..pages.len() - 1].iter().all(Result::is_ok), "only the last item is an error");
    match pages.last() {
        Some(Err(Error::Walk(e))) => e.clone(),
        other => panic!("the walk must end with Error::Walk, got {other:?}"),
    }
}

#[tokio::test]
async fn a_faithful_listing_completes_with_every_item_once() {
    bounded(async {
        for (total, reason) in [(25, StopReason::ShortPage), (30, StopReason::TotalReached), (0, StopReason::EmptyPage)]
        {
            let (pages, outcome, _) = walk(Script::Faithful { total }).await;
            let ids: Vec<String> =
                pages.into_iter().flat_map(|p| p.unwrap().data).map(|o| o.operation_id.to_string()).collect();
            assert_eq!(ids, (0..total).map(|i| format!("op-{i}")).collect::<Vec<_>>());
            assert_eq!(outcome, Some(Ok(reason)), "total {total}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_that_answers_another_page_number_fails_the_walk() {
    bounded(async {
        let (pages, outcome, requests) = walk(Script::IgnoresPageNoEchoingZero).await;
        assert_eq!(walk_error(&pages), WalkError::PageNumberMismatch { asked: 1, answered: 0 });
        assert_eq!(outcome, Some(Err(WalkOutcomeError::Walk(WalkError::PageNumberMismatch { asked: 1, answered: 0 }))));
        assert_eq!(requests, 2, "the walk stops at the first wrong page");
    })
    .await;
}

#[tokio::test]
async fn items_end_with_the_walk_error_after_the_items_received() {
    bounded(async {
        let platform = Platform::start(|call| match call.kind {
            Kind::Api => answer(call, Script::IgnoresPageNoEchoingZero),
            _ => tokens(call),
        })
        .await;
        let (client, _sleeper) = client(&platform);
        let items: Vec<_> = client.items(QueryUpgradeTaskList::new().with_page_size(10)).collect().await;
        assert_eq!(items.len(), 11);
        assert!(items[..10].iter().all(Result::is_ok));
        assert!(matches!(&items[10], Err(Error::Walk(WalkError::PageNumberMismatch { .. }))), "{:?}", items[10]);
        // try_collect stops at the error: a walk that failed never collects as a complete listing.
        let collected: Result<Vec<_>, _> =
            client.items(QueryUpgradeTaskList::new().with_page_size(10)).try_collect().await;
        assert!(collected.is_err());
        platform.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreadable_item_is_yielded_in_its_place_and_the_walk_goes_on() {
    bounded(async {
        let platform = Platform::start(|call| match call.kind {
            Kind::Api => {
                let body = r#"{"pageNo":0,"totalCount":3,"data":[{"operationId":"a"},
                    {"operationId":"b","createTime":"yesterday"},{"operationId":"c"}]}"#;
                Response::new(body.as_bytes().to_vec())
            }
            _ => tokens(call),
        })
        .await;
        let (client, _sleeper) = client(&platform);
        let items: Vec<_> = client.items(QueryUpgradeTaskList::new().with_page_size(10)).collect().await;
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().operation_id.as_str(), "a");
        assert!(matches!(&items[1], Err(Error::Item(r)) if r.index == 1 && r.path == "createTime"), "{:?}", items[1]);
        assert_eq!(items[2].as_ref().unwrap().operation_id.as_str(), "c");
        platform.stop().await;
    })
    .await;
}
