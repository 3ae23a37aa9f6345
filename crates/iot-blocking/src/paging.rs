//! Paged walks as iterators, on iot-proto's [`PageWalker`]: which page comes next and whether the pages add up
//! is the walker's business; this file sends each page's call and hands the page on.

use iot_proto::call::{PageWalker, WalkStop, items_in_order};
use iot_proto::pager::{PagerError, StopReason};
use iot_proto::{Page, Paged};

use crate::{Client, Error};

type Item<E> = <<E as iot_proto::Endpoint>::Response as Page>::Item;

/// A paged walk driven by hand: call [`next_page`](Self::next_page) until it gives `None`, then read
/// [`outcome`](Self::outcome) to learn why it stopped.
///
/// A walk ends complete (an empty page, a short page, or `totalCount` reached) or with an error as its last
/// page: [`Error::Walk`] when the pages do not add up, or the failed call's error. It never ends normally after
/// losing or repeating an item.
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

/// Why a [`PageWalk`] did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalkOutcomeError {
    /// The pages did not add up, or a call failed (see [`WalkStop`]).
    Stopped(WalkStop),
    /// The walk could not start (page size outside the endpoint's limits).
    Paging,
}

impl<E> PageWalk<E>
where
    E: Paged,
    E::Response: Page,
    Item<E>: Clone + PartialEq,
{
    /// The next page, or `None` once the walk has ended; an error is the walk's last page.
    pub fn next_page(&mut self) -> Option<Result<E::Response, Error>> {
        let walker = match &mut self.walker {
            Ok(walker) => walker,
            Err(e) => return e.take().map(|e| Err(Error::Paging(e))),
        };
        let request = walker.next_request()?;
        match self.client.send(request) {
            Ok(page) => match walker.handle_page(&page) {
                Ok(()) => Some(Ok(page)),
                Err(e) => Some(Err(Error::Walk(e))),
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
            Ok(walker) => walker.outcome().map(|o| o.map_err(WalkOutcomeError::Stopped)),
            Err(_) => Some(Err(WalkOutcomeError::Paging)),
        }
    }
}

/// Every page of a walk; see [`Client::pages`].
#[derive(Debug)]
pub struct Pages<E>(PageWalk<E>)
where
    E: Paged,
    E::Response: Page;

impl<E> Iterator for Pages<E>
where
    E: Paged,
    E::Response: Page,
    Item<E>: Clone + PartialEq,
{
    type Item = Result<E::Response, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_page()
    }
}

/// Every item of a walk, one page in memory at a time; see [`Client::items`].
pub struct Items<E>
where
    E: Paged,
    E::Response: Page,
{
    walk: PageWalk<E>,
    page: std::vec::IntoIter<Result<Item<E>, Error>>,
}

impl<E> std::fmt::Debug for Items<E>
where
    E: Paged,
    E::Response: Page,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items").field("walk", &self.walk).field("left_on_page", &self.page.len()).finish()
    }
}

impl<E> Iterator for Items<E>
where
    E: Paged,
    E::Response: Page,
    Item<E>: Clone + PartialEq,
{
    type Item = Result<Item<E>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.page.next() {
                return Some(item);
            }
            match self.walk.next_page()? {
                Ok(page) => {
                    self.page = items_in_order(page).map(|i| i.map_err(Error::Item)).collect::<Vec<_>>().into_iter()
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl Client {
    /// A paged walk of `request` from its `pageNo` (0 when unset) with its `pageSize` (the family's default when
    /// unset), driven by hand; see [`PageWalk`].
    pub fn walk<E>(&self, request: E) -> PageWalk<E>
    where
        E: Paged,
        E::Response: Page,
        Item<E>: Clone + PartialEq,
    {
        let walker = PageWalker::new(request, self.config().max_pages).map_err(Some);
        PageWalk { client: self.clone(), walker }
    }

    /// Every page of a paged query. An error is the last item: a walk never ends normally after losing or
    /// repeating an item.
    pub fn pages<E>(&self, request: E) -> Pages<E>
    where
        E: Paged,
        E::Response: Page,
        Item<E>: Clone + PartialEq,
    {
        Pages(self.walk(request))
    }

    /// Every item of a paged query, in the order the platform sent them. An item the SDK cannot read is yielded
    /// in its place as [`Error::Item`] and the walk goes on; an error of the walk itself is the last item.
    pub fn items<E>(&self, request: E) -> Items<E>
    where
        E: Paged,
        E::Response: Page,
        Item<E>: Clone + PartialEq,
    {
        Items { walk: self.walk(request), page: Vec::new().into_iter() }
    }
}
