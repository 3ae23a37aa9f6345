//! Paged walks: a [`PageWalk`] you drive page by page and ask how it ended, and `Stream`s of pages or items
//! built on it, with one page in memory at a time.
//!
//! A `Stream` (rather than only an inherent `async fn next`) because it composes with the `futures` combinators
//! users already know (`try_next`, `try_for_each`, `take`...), and `Stream` is the type every runtime's
//! ecosystem accepts. The walk's decisions (which page next, when the listing is complete, when the pages do
//! not add up) are iot-proto's [`PageWalker`]; this file only feeds it.

use futures_core::Stream;
use futures_util::{StreamExt, stream};
use iot_proto::call::{PageWalker, WalkStop, items_in_order};
use iot_proto::pager::{PagerError, StopReason, WalkError};
use iot_proto::{Page, Paged};

use crate::{Client, Error};

/// A paged walk driven by hand: call [`next_page`](Self::next_page) until it gives `None`, then read
/// [`outcome`](Self::outcome) to learn why it stopped.
///
/// A walk ends in exactly one of two ways: complete (an empty page, a short page, or `totalCount` reached, with
/// every promised item received) or an error, yielded as the walk's last page: [`Error::Walk`] when the pages
/// do not add up (a page repeated or answered for another page number, `totalCount` shrinking or not reached,
/// the page guard), or the call's own error.
///
/// ```no_run
/// # async fn run(client: iot_hyper::Client) -> Result<(), iot_hyper::Error> {
/// use iot_proto::{QuerySubOperations, pager::StopReason};
/// let mut walk = client.walk(QuerySubOperations::new("operation-id".parse().unwrap()));
/// while let Some(page) = walk.next_page().await {
///     let page = page?;
///     for rejected in &page.rejected {
///         eprintln!("unreadable: {rejected}");
///     }
///     println!("{} subtasks", page.data.len());
/// }
/// assert!(matches!(walk.outcome(), Some(Ok(StopReason::EmptyPage | StopReason::ShortPage | StopReason::TotalReached))));
/// # Ok(()) }
/// ```
pub struct PageWalk<E>
where
    E: Paged,
    E::Response: Page,
{
    client: Client,
    /// `Err` when the walk could not start; the error is yielded once, then taken.
    walker: Result<PageWalker<E>, Option<PagerError>>,
}

impl<E> std::fmt::Debug for PageWalk<E>
where
    E: Paged,
    E::Response: Page,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageWalk").field("walker", &self.walker).finish_non_exhaustive()
    }
}

impl<E> PageWalk<E>
where
    E: Paged + Send + Sync,
    E::Response: Page + Send,
    <E::Response as Page>::Item: Clone + PartialEq,
{
    /// The next page, or `None` once the walk has ended; an error is the walk's last item.
    pub async fn next_page(&mut self) -> Option<Result<E::Response, Error>> {
        let walker = match &mut self.walker {
            Ok(walker) => walker,
            Err(e) => return e.take().map(|e| Err(Error::Paging(e))),
        };
        let request = walker.next_request()?;
        match self.client.send(request).await {
            Ok(page) => match walker.handle_page(&page) {
                Err(e) => Some(Err(Error::Walk(e))),
                Ok(()) => Some(Ok(page)),
            },
            Err(e) => {
                walker.handle_call_failed();
                Some(Err(e))
            }
        }
    }

    /// How the walk ended: `Ok` with the reason the listing is complete, `Err` with the reason it is not;
    /// `None` while it goes on.
    pub fn outcome(&self) -> Option<Result<StopReason, WalkOutcomeError>> {
        match &self.walker {
            Ok(walker) => walker.outcome().map(|o| {
                o.map_err(|stop| match stop {
                    WalkStop::Walk(e) => WalkOutcomeError::Walk(e),
                    _ => WalkOutcomeError::CallFailed,
                })
            }),
            Err(None) => Some(Err(WalkOutcomeError::Paging)),
            Err(Some(_)) => None,
        }
    }
}

/// Why a [`PageWalk`] did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalkOutcomeError {
    /// The pages did not add up.
    Walk(WalkError),
    /// A call failed (the walk yielded its error).
    CallFailed,
    /// The walk could not start (page size outside the endpoint's limits).
    Paging,
}

impl Client {
    /// A paged walk of `request`, from its `pageNo` (0 when unset) with its `pageSize` (the family's default
    /// when unset), driven by hand; see [`PageWalk`].
    pub fn walk<E>(&self, request: E) -> PageWalk<E>
    where
        E: Paged + Send + Sync,
        E::Response: Page,
        <E::Response as Page>::Item: Clone + PartialEq,
    {
        PageWalk { client: self.clone(), walker: PageWalker::new(request, self.config().max_pages).map_err(Some) }
    }

    /// Walks every page of a paged query as a `Stream` (see [`PageWalk`] for how a walk ends). An error is the
    /// stream's last item: a walk never ends normally after losing or repeating an item.
    pub fn pages<E>(&self, request: E) -> impl Stream<Item = Result<E::Response, Error>> + Send + 'static
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        <E::Response as Page>::Item: Clone + PartialEq + Send,
    {
        stream::unfold(self.walk(request), |mut walk| async move { walk.next_page().await.map(|page| (page, walk)) })
    }

    /// Walks every item of a paged query, holding one page in memory at a time. An item the platform sent but
    /// the reader could not read is yielded in its place as [`Error::Item`], and the walk goes on; an error of
    /// the walk itself is the stream's last item.
    pub fn items<E>(
        &self,
        request: E,
    ) -> impl Stream<Item = Result<<E::Response as Page>::Item, Error>> + Send + 'static
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        <E::Response as Page>::Item: Clone + PartialEq + Send,
    {
        self.pages(request)
            .flat_map(|page| {
                let items: Vec<Result<_, Error>> = match page {
                    Ok(page) => in_place(page),
                    Err(e) => vec![Err(e)],
                };
                stream::iter(items)
            })
            .boxed()
    }
}

/// The page's items in the order they were sent, each unreadable one as an [`Error::Item`] in its place.
fn in_place<P: Page>(page: P) -> Vec<Result<P::Item, Error>> {
    items_in_order(page).map(|item| item.map_err(Error::Item)).collect()
}
