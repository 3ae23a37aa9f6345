//! Sans-IO pagination: decides which page to request next and when a listing is finished.
//!
//! The platform pages its listings with `pageNo` (0-based by default) and `pageSize`, and reports a
//! `totalCount` that may change while a client walks the pages. A [`Pager`] never trusts a single
//! signal to end the walk: it stops on an empty page, a short page, the reported total being reached,
//! a caller-chosen maximum number of pages, or the page number running out of range. Whatever the server
//! answers, a walk therefore ends after at most `max_pages` responses.
//!
//! ```
//! use iot_proto::pager::{Pager, PagingLimits, StopReason};
//!
//! let limits = PagingLimits::new(1, 100, 10);
//! let mut pager = Pager::new(limits, Some(10), 0, 1_000)?;
//! let mut requested = Vec::new();
//! while let Some(request) = pager.next_request() {
//!     requested.push(request.page_no);
//!     // Pretend the server holds 25 items.
//!     let remaining = 25 - pager.items_seen();
//!     let items = remaining.min(u64::from(request.page_size)) as usize;
//!     pager.handle_page(items, Some(25));
//! }
//! assert_eq!(requested, [0, 1, 2]);
//! assert_eq!(pager.stop_reason(), Some(StopReason::ShortPage));
//! # Ok::<(), iot_proto::pager::PagerError>(())
//! ```

use serde::{Deserialize, Serialize};

/// The page-size rules of one family of listing APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PagingLimits {
    /// The smallest page size the server accepts.
    pub page_size_min: u32,
    /// The largest page size the server accepts.
    pub page_size_max: u32,
    /// The page size the server uses when the request names none.
    pub page_size_default: u32,
}

impl PagingLimits {
    /// Describes a family of listing APIs; [`Pager::new`] checks that the three values are consistent.
    pub const fn new(page_size_min: u32, page_size_max: u32, page_size_default: u32) -> Self {
        Self { page_size_min, page_size_max, page_size_default }
    }

    /// Returns whether `1 <= min <= default <= max`.
    pub const fn is_consistent(&self) -> bool {
        self.page_size_min >= 1
            && self.page_size_min <= self.page_size_default
            && self.page_size_default <= self.page_size_max
    }

    /// Returns whether `page_size` lies within `min..=max`.
    pub const fn accepts(&self, page_size: u32) -> bool {
        page_size >= self.page_size_min && page_size <= self.page_size_max
    }
}

/// The page a caller should fetch next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageRequest {
    /// The value for the `pageNo` query parameter.
    pub page_no: u32,
    /// The value for the `pageSize` query parameter.
    pub page_size: u32,
}

/// Why a [`Pager`] stopped asking for pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StopReason {
    /// The last page held no items.
    EmptyPage,
    /// The last page held fewer items than the page size.
    ShortPage,
    /// The items seen so far reached the `totalCount` of the last page.
    TotalReached,
    /// The pager handled as many pages as its `max_pages` guard allows.
    MaxPages,
    /// The next page number would not fit in a `u32`.
    PageNumberExhausted,
}

/// Why a [`Pager`] could not be built or resumed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PagerError {
    /// The requested page size lies outside the limits of the API.
    #[error("page size {value} is outside the accepted range {min}..={max}")]
    PageSizeOutOfRange {
        /// The rejected page size.
        value: u32,
        /// The smallest accepted page size.
        min: u32,
        /// The largest accepted page size.
        max: u32,
    },
    /// The limits themselves break `1 <= min <= default <= max`.
    #[error("inconsistent paging limits: min {min}, default {default}, max {max}")]
    InconsistentLimits {
        /// The configured minimum.
        min: u32,
        /// The configured default.
        default: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The maximum number of pages is zero, so no page could ever be requested.
    #[error("max pages must be at least 1")]
    ZeroMaxPages,
    /// A stored position claims more pages than its own `max_pages` guard allows.
    #[error("stored position has seen {pages_seen} pages, more than its limit of {max_pages}")]
    PositionBeyondLimit {
        /// The pages the position claims to have seen.
        pages_seen: u32,
        /// The position's page guard.
        max_pages: u32,
    },
}

/// A snapshot of a [`Pager`] that can be stored (it is serializable) and handed to [`Pager::resume`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PagePosition {
    /// The page number the pager would request next.
    pub next_page_no: u32,
    /// The page size the walk uses.
    pub page_size: u32,
    /// How many pages have been handled so far.
    pub pages_seen: u32,
    /// How many items those pages held in total.
    pub items_seen: u64,
    /// The page guard of the walk.
    pub max_pages: u32,
    /// Why the walk stopped, if it did.
    pub stop_reason: Option<StopReason>,
}

/// The pagination state machine: ask it for a [`PageRequest`], feed it each response.
///
/// The pager only counts items; it does not look at them, so duplicates that a shifting listing may
/// produce are the caller's to filter. Its termination never depends on the items' content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pager {
    page_size: u32,
    next_page_no: u32,
    pages_seen: u32,
    items_seen: u64,
    max_pages: u32,
    stop_reason: Option<StopReason>,
}

impl Pager {
    /// Starts a walk at `first_page` that handles at most `max_pages` pages.
    ///
    /// `page_size` `None` picks the default of `limits`. Fails when the page size lies outside the
    /// limits, the limits are inconsistent, or `max_pages` is zero.
    pub fn new(
        limits: PagingLimits,
        page_size: Option<u32>,
        first_page: u32,
        max_pages: u32,
    ) -> Result<Self, PagerError> {
        let page_size = checked_page_size(limits, page_size.unwrap_or(limits.page_size_default))?;
        if max_pages == 0 {
            return Err(PagerError::ZeroMaxPages);
        }
        Ok(Self { page_size, next_page_no: first_page, pages_seen: 0, items_seen: 0, max_pages, stop_reason: None })
    }

    /// Continues a walk from a stored [`PagePosition`], checking it against `limits` again.
    ///
    /// A finished position resumes as a finished pager.
    pub fn resume(limits: PagingLimits, position: PagePosition) -> Result<Self, PagerError> {
        let page_size = checked_page_size(limits, position.page_size)?;
        if position.max_pages == 0 {
            return Err(PagerError::ZeroMaxPages);
        }
        if position.pages_seen > position.max_pages {
            return Err(PagerError::PositionBeyondLimit {
                pages_seen: position.pages_seen,
                max_pages: position.max_pages,
            });
        }
        // A position edited by hand may sit at the guard without saying so; stop rather than overrun.
        let stop_reason =
            position.stop_reason.or((position.pages_seen == position.max_pages).then_some(StopReason::MaxPages));
        Ok(Self {
            page_size,
            next_page_no: position.next_page_no,
            pages_seen: position.pages_seen,
            items_seen: position.items_seen,
            max_pages: position.max_pages,
            stop_reason,
        })
    }

    /// Returns the page to fetch next, or `None` once the walk is finished.
    pub fn next_request(&self) -> Option<PageRequest> {
        match self.stop_reason {
            Some(_) => None,
            None => Some(PageRequest { page_no: self.next_page_no, page_size: self.page_size }),
        }
    }

    /// Records the response to the request from [`next_request`](Self::next_request).
    ///
    /// `items` is the number of items the page held and `total_count` the `totalCount` it reported, if
    /// any. The walk stops, in this order of precedence, on an empty page, a short page, the total being
    /// reached, the page guard, or the page number running out. Calls after the walk finished are
    /// ignored, so a stray response cannot restart it.
    pub fn handle_page(&mut self, items: usize, total_count: Option<u64>) {
        if self.stop_reason.is_some() {
            return;
        }
        let items = u64::try_from(items).unwrap_or(u64::MAX);
        self.pages_seen = self.pages_seen.saturating_add(1);
        self.items_seen = self.items_seen.saturating_add(items);
        self.stop_reason = if items == 0 {
            Some(StopReason::EmptyPage)
        } else if items < u64::from(self.page_size) {
            Some(StopReason::ShortPage)
        } else if total_count.is_some_and(|total| self.items_seen >= total) {
            Some(StopReason::TotalReached)
        } else if self.pages_seen >= self.max_pages {
            Some(StopReason::MaxPages)
        } else {
            None
        };
        if self.stop_reason.is_none() {
            match self.next_page_no.checked_add(1) {
                Some(next) => self.next_page_no = next,
                None => self.stop_reason = Some(StopReason::PageNumberExhausted),
            }
        }
    }

    /// Returns why the walk stopped, or `None` while it goes on.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason
    }

    /// Returns whether the walk is finished.
    pub fn is_finished(&self) -> bool {
        self.stop_reason.is_some()
    }

    /// Returns the number of items the handled pages held (duplicates included).
    pub fn items_seen(&self) -> u64 {
        self.items_seen
    }

    /// Returns the number of pages handled.
    pub fn pages_seen(&self) -> u32 {
        self.pages_seen
    }

    /// Returns the page size of the walk.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// Returns a snapshot that [`Pager::resume`] turns back into an equal pager.
    pub fn position(&self) -> PagePosition {
        PagePosition {
            next_page_no: self.next_page_no,
            page_size: self.page_size,
            pages_seen: self.pages_seen,
            items_seen: self.items_seen,
            max_pages: self.max_pages,
            stop_reason: self.stop_reason,
        }
    }
}

fn checked_page_size(limits: PagingLimits, page_size: u32) -> Result<u32, PagerError> {
    if !limits.is_consistent() {
        return Err(PagerError::InconsistentLimits {
            min: limits.page_size_min,
            default: limits.page_size_default,
            max: limits.page_size_max,
        });
    }
    if !limits.accepts(page_size) {
        return Err(PagerError::PageSizeOutOfRange {
            value: page_size,
            min: limits.page_size_min,
            max: limits.page_size_max,
        });
    }
    Ok(page_size)
}

/// Why a paged walk failed instead of completing: each outcome means an item may have been lost or repeated,
/// so none of them may pass for the end of the listing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The walk handled as many pages as its guard allows and the listing was not finished.
    #[error("the walk stopped at its guard of {pages} pages before the listing ended")]
    PageGuard {
        /// The guard.
        pages: u32,
    },
    /// The next page number would not fit in a `u32`.
    #[error("the page number ran out before the listing ended")]
    PageNumberExhausted,
    /// The server answered another page than the one asked for (it ignores or rewrites `pageNo`).
    #[error("asked for page {asked}, the platform answered page {answered}")]
    PageNumberMismatch {
        /// The page asked for.
        asked: u32,
        /// The page the answer says it is.
        answered: u32,
    },
    /// The page held the same items as the page before it (a server that ignores `pageNo`, say).
    #[error("page {page_no} repeats the page before it")]
    RepeatedPage {
        /// The repeating page.
        page_no: u32,
    },
    /// `totalCount` went down during the walk: items were removed, so later pages shifted and an item may
    /// have been skipped.
    #[error("the listing shrank from {was} to {now} items during the walk (at page {page_no})")]
    TotalShrank {
        /// The page that reported the lower count.
        page_no: u32,
        /// The count reported before.
        was: u64,
        /// The count reported now.
        now: u64,
    },
    /// The listing ended (an empty or short page) before the items `totalCount` promised: the server cut the
    /// walk short, or pages smaller than asked for.
    #[error("the listing ended after {seen} of {total} items (at page {page_no})")]
    Truncated {
        /// The last page.
        page_no: u32,
        /// Items up to the end of the last page (the pages before the walk's first page included).
        seen: u64,
        /// Items the platform reported.
        total: u64,
    },
}

/// A paged walk with integrity checks: a [`Pager`] that also reads each page's echo of `pageNo`, its
/// `totalCount` and its first and last items, so that the walk ends in exactly one of two ways: complete
/// ([`StopReason::EmptyPage`], [`StopReason::ShortPage`] or [`StopReason::TotalReached`], with every promised
/// item received) or a [`WalkError`]. Sans-IO: ask [`next_request`](Self::next_request), feed each answer to
/// [`handle_page`](Self::handle_page).
///
/// ```
/// use iot_proto::pager::{StopReason, Walk, WalkError};
/// use iot_proto::{Page, QueryUpgradeTaskList};
/// use iot_model::{OperationId, OperationInfo, OperationPage};
///
/// let limits = <OperationPage as Page>::LIMITS;
/// let item = |n: u32| OperationInfo::new(OperationId::new(format!("op-{n}")).unwrap());
/// let mut walk = Walk::new(limits, Some(2), 0, 100)?;
/// let request = walk.next_request().unwrap();
/// walk.handle_page(&OperationPage::from_items(request.page_no, 2, 3, vec![item(0), item(1)]));
/// // A server that ignores pageNo answers page 0 again.
/// let request = walk.next_request().unwrap();
/// let outcome = walk.handle_page(&OperationPage::from_items(0, 2, 3, vec![item(0), item(1)]));
/// assert_eq!(outcome, Some(Err(WalkError::PageNumberMismatch { asked: request.page_no, answered: 0 })));
/// assert!(walk.next_request().is_none());
/// # Ok::<(), iot_proto::pager::PagerError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Walk<I> {
    pager: Pager,
    /// Items before the first page of the walk (a walk may start part-way through a listing).
    offset: u64,
    total: Option<u64>,
    previous: Option<Signature<I>>,
    outcome: Option<Result<StopReason, WalkError>>,
}

/// What tells one page from the next: its size and its first and last items (readable and not).
#[derive(Clone, Debug, PartialEq)]
struct Signature<I> {
    count: usize,
    first: Option<I>,
    last: Option<I>,
    rejected: Vec<iot_model::RejectedItem>,
}

impl<I: Clone + PartialEq> Walk<I> {
    /// Starts a walk at `first_page` that handles at most `max_pages` pages (see [`Pager::new`]).
    pub fn new(
        limits: PagingLimits,
        page_size: Option<u32>,
        first_page: u32,
        max_pages: u32,
    ) -> Result<Self, PagerError> {
        let pager = Pager::new(limits, page_size, first_page, max_pages)?;
        let offset = u64::from(first_page).saturating_mul(u64::from(pager.page_size()));
        Ok(Self { pager, offset, total: None, previous: None, outcome: None })
    }

    /// The page to fetch next, or `None` once the walk has an outcome. Call it before each request.
    #[must_use]
    pub fn next_request(&self) -> Option<PageRequest> {
        match self.outcome {
            Some(_) => None,
            None => self.pager.next_request(),
        }
    }

    /// Records the answer to the request from [`next_request`](Self::next_request); returns the walk's outcome
    /// once it has one (and `None` while it goes on). Calls after the outcome are ignored.
    pub fn handle_page<P: crate::endpoint::Page<Item = I>>(
        &mut self,
        page: &P,
    ) -> Option<Result<StopReason, WalkError>> {
        let asked = self.next_request()?;
        self.outcome = self.judge(asked, page);
        self.outcome.clone()
    }

    fn judge<P: crate::endpoint::Page<Item = I>>(
        &mut self,
        asked: PageRequest,
        page: &P,
    ) -> Option<Result<StopReason, WalkError>> {
        let page_no = asked.page_no;
        if let Some(answered) = page.page_no().filter(|n| *n != page_no) {
            return Some(Err(WalkError::PageNumberMismatch { asked: page_no, answered }));
        }
        let signature = Signature {
            count: page.item_count(),
            first: page.items().first().cloned(),
            last: page.items().last().cloned(),
            rejected: page.rejected().to_vec(),
        };
        if signature.count > 0 && self.previous.as_ref() == Some(&signature) {
            return Some(Err(WalkError::RepeatedPage { page_no }));
        }
        self.previous = Some(signature);
        match (self.total, page.total_count()) {
            (Some(was), Some(now)) if now < was => return Some(Err(WalkError::TotalShrank { page_no, was, now })),
            // A higher count is new items arriving; the walk goes on to the new end.
            (_, Some(now)) => self.total = Some(now),
            (_, None) => {}
        }
        self.pager.handle_page(page.item_count(), self.total.map(|t| t.saturating_sub(self.offset)));
        let seen = self.pager.items_seen().saturating_add(self.offset);
        match self.pager.stop_reason()? {
            reason @ (StopReason::EmptyPage | StopReason::ShortPage) => match self.total {
                Some(total) if seen < total => Some(Err(WalkError::Truncated { page_no, seen, total })),
                _ => Some(Ok(reason)),
            },
            StopReason::TotalReached => Some(Ok(StopReason::TotalReached)),
            StopReason::MaxPages => Some(Err(WalkError::PageGuard { pages: self.pager.pages_seen() })),
            StopReason::PageNumberExhausted => Some(Err(WalkError::PageNumberExhausted)),
        }
    }

    /// How the walk ended: `Ok` with the reason it is complete, or the error that stopped it; `None` while it
    /// goes on.
    pub fn outcome(&self) -> Option<&Result<StopReason, WalkError>> {
        self.outcome.as_ref()
    }

    /// Items received so far (readable and not, duplicates included), not counting the pages before the
    /// walk's first page.
    pub fn items_seen(&self) -> u64 {
        self.pager.items_seen()
    }

    /// Pages handled so far.
    pub fn pages_seen(&self) -> u32 {
        self.pager.pages_seen()
    }
}

/// The server side of paging: cuts page `page_no` (0 when absent) of `page_size` items (the family's default
/// when absent) out of every matching item, and returns the page number, the page size, the total count and
/// the page's items. A page past the end is empty. Page sizes beyond the limits are refused before this, by
/// the endpoint's validation.
pub fn slice_page<T>(
    items: Vec<T>,
    page_no: Option<u32>,
    page_size: Option<u32>,
    limits: PagingLimits,
) -> (u32, u32, u64, Vec<T>) {
    let page_no = page_no.unwrap_or(0);
    let page_size = page_size.unwrap_or(limits.page_size_default).max(1);
    let total = items.len() as u64;
    let skip = u64::from(page_no) * u64::from(page_size);
    let page = items.into_iter().skip(usize::try_from(skip).unwrap_or(usize::MAX)).take(page_size as usize).collect();
    (page_no, page_size, total, page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const LIMITS: PagingLimits = PagingLimits::new(1, 100, 10);

    /// A scripted page: the item count and the reported total.
    type Page = (usize, Option<u64>);

    /// Drives `pager` against `pages` (page `i` answers the `i`-th request), bounded by the script
    /// length so a pager that never stops fails the test instead of hanging it.
    fn drive(pager: &mut Pager, pages: &[Page]) -> Vec<PageRequest> {
        let mut requested = Vec::new();
        for &(items, total) in pages {
            let Some(request) = pager.next_request() else {
                break;
            };
            requested.push(request);
            pager.handle_page(items, total);
        }
        assert!(pager.is_finished(), "the script ran out before the pager stopped");
        requested
    }

    /// A server holding `total` items, answering any page honestly.
    fn honest(total: u64, page_size: u32, pages: u32) -> Vec<Page> {
        (0..u64::from(pages))
            .map(|page| {
                let start = page * u64::from(page_size);
                let items = total.saturating_sub(start).min(u64::from(page_size));
                (usize::try_from(items).unwrap(), Some(total))
            })
            .collect()
    }

    fn page_numbers(requests: &[PageRequest]) -> Vec<u32> {
        requests.iter().map(|r| r.page_no).collect()
    }

    #[test]
    fn default_page_size_is_used_when_none_is_given() {
        let pager = Pager::new(LIMITS, None, 0, 5).unwrap();
        assert_eq!(pager.next_request(), Some(PageRequest { page_no: 0, page_size: 10 }));
        assert_eq!(pager.pages_seen(), 0);
        assert_eq!(pager.items_seen(), 0);
        assert_eq!(pager.stop_reason(), None);
    }

    #[test]
    fn page_size_outside_the_limits_is_rejected_with_value_and_range() {
        for bad in [0, 101, u32::MAX] {
            let err = Pager::new(LIMITS, Some(bad), 0, 5).unwrap_err();
            assert_eq!(err, PagerError::PageSizeOutOfRange { value: bad, min: 1, max: 100 });
            let shown = err.to_string();
            assert!(shown.contains(&bad.to_string()), "{shown}");
            assert!(shown.contains("1..=100"), "{shown}");
        }
        for good in [1, 50, 100] {
            assert_eq!(Pager::new(LIMITS, Some(good), 0, 5).unwrap().page_size(), good);
        }
    }

    #[test]
    fn inconsistent_limits_and_zero_max_pages_are_rejected() {
        for limits in [PagingLimits::new(0, 100, 10), PagingLimits::new(20, 100, 10), PagingLimits::new(1, 5, 10)] {
            assert!(matches!(Pager::new(limits, Some(5), 0, 5), Err(PagerError::InconsistentLimits { .. })));
        }
        assert_eq!(Pager::new(LIMITS, None, 0, 0), Err(PagerError::ZeroMaxPages));
    }

    #[test]
    fn total_not_a_multiple_of_the_page_size_ends_on_the_short_page() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &honest(25, 10, 10));
        assert_eq!(page_numbers(&requested), [0, 1, 2]);
        assert_eq!(pager.stop_reason(), Some(StopReason::ShortPage));
        assert_eq!(pager.items_seen(), 25);
        assert_eq!(pager.pages_seen(), 3);
        assert_eq!(pager.next_request(), None);
    }

    #[test]
    fn total_that_is_a_multiple_needs_no_extra_empty_page() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &honest(30, 10, 10));
        assert_eq!(page_numbers(&requested), [0, 1, 2]);
        assert_eq!(pager.stop_reason(), Some(StopReason::TotalReached));
        assert_eq!(pager.items_seen(), 30);
    }

    #[test]
    fn zero_total_stops_after_the_first_empty_page() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &honest(0, 10, 10));
        assert_eq!(page_numbers(&requested), [0]);
        assert_eq!(pager.stop_reason(), Some(StopReason::EmptyPage));
        assert_eq!(pager.items_seen(), 0);
        assert_eq!(pager.pages_seen(), 1);
    }

    #[test]
    fn zero_total_on_a_full_page_still_stops() {
        // An inconsistent server: a full page claiming there is nothing at all.
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        drive(&mut pager, &[(10, Some(0)), (10, Some(0))]);
        assert_eq!(pager.stop_reason(), Some(StopReason::TotalReached));
        assert_eq!(pager.pages_seen(), 1);
    }

    #[test]
    fn missing_total_walks_until_a_short_or_empty_page() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &[(10, None), (10, None), (3, None), (10, None)]);
        assert_eq!(page_numbers(&requested), [0, 1, 2]);
        assert_eq!(pager.stop_reason(), Some(StopReason::ShortPage));
        assert_eq!(pager.items_seen(), 23);

        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &[(10, None), (10, None), (0, None), (10, None)]);
        assert_eq!(page_numbers(&requested), [0, 1, 2]);
        assert_eq!(pager.stop_reason(), Some(StopReason::EmptyPage));
        assert_eq!(pager.items_seen(), 20);
    }

    #[test]
    fn shrinking_total_between_pages_stops_as_soon_as_it_is_reached() {
        // The listing had 100 items when the walk began, then most were deleted.
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &[(10, Some(100)), (10, Some(15)), (10, Some(15))]);
        assert_eq!(page_numbers(&requested), [0, 1]);
        assert_eq!(pager.stop_reason(), Some(StopReason::TotalReached));
        assert_eq!(pager.items_seen(), 20);
    }

    #[test]
    fn growing_total_keeps_the_walk_going() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &[(10, Some(10)), (10, Some(40))]);
        // The first page alone reaches the total it reports: the walk stops there.
        assert_eq!(page_numbers(&requested), [0]);

        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &[(10, Some(15)), (10, Some(40)), (10, Some(40)), (10, Some(40))]);
        // Items seen (10) are below the first total, then the total grows: the walk goes on.
        assert_eq!(page_numbers(&requested), [0, 1, 2, 3]);
        assert_eq!(pager.stop_reason(), Some(StopReason::TotalReached));
        assert_eq!(pager.items_seen(), 40);
    }

    #[test]
    fn duplicates_are_counted_and_the_walk_still_ends() {
        // An insertion at the head shifts the listing: page 1 repeats the last item of page 0, so the
        // pager sees more items than distinct ones and the total is reached one item early.
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &[(10, Some(25)), (10, Some(26)), (10, Some(26)), (10, Some(26))]);
        assert_eq!(page_numbers(&requested), [0, 1, 2]);
        assert_eq!(pager.stop_reason(), Some(StopReason::TotalReached));
        assert_eq!(pager.items_seen(), 30);
    }

    #[test]
    fn server_that_always_returns_full_pages_stops_at_max_pages() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 7).unwrap();
        let endless = vec![(10, None); 1_000];
        let requested = drive(&mut pager, &endless);
        assert_eq!(page_numbers(&requested), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(pager.stop_reason(), Some(StopReason::MaxPages));
        assert_eq!(pager.pages_seen(), 7);
        assert_eq!(pager.items_seen(), 70);

        // A total the server never lets us reach behaves the same.
        let mut pager = Pager::new(LIMITS, Some(10), 0, 3).unwrap();
        drive(&mut pager, &vec![(10, Some(u64::MAX)); 1_000]);
        assert_eq!(pager.stop_reason(), Some(StopReason::MaxPages));
        assert_eq!(pager.pages_seen(), 3);
    }

    #[test]
    fn oversized_pages_count_as_full() {
        // A server that ignores pageSize and returns more items than asked.
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        let requested = drive(&mut pager, &[(50, Some(60)), (50, Some(60))]);
        assert_eq!(page_numbers(&requested), [0, 1]);
        assert_eq!(pager.stop_reason(), Some(StopReason::TotalReached));
        assert_eq!(pager.items_seen(), 100);
    }

    #[test]
    fn stop_precedence_is_empty_then_short_then_total_then_max() {
        let cases: [(Page, u32, StopReason); 4] = [
            ((0, Some(0)), 1, StopReason::EmptyPage),
            ((3, Some(3)), 1, StopReason::ShortPage),
            ((10, Some(10)), 1, StopReason::TotalReached),
            ((10, Some(11)), 1, StopReason::MaxPages),
        ];
        for ((items, total), max_pages, expected) in cases {
            let mut pager = Pager::new(LIMITS, Some(10), 0, max_pages).unwrap();
            pager.handle_page(items, total);
            assert_eq!(pager.stop_reason(), Some(expected), "items {items} total {total:?}");
        }
    }

    #[test]
    fn first_page_offsets_the_page_numbers() {
        let mut pager = Pager::new(LIMITS, Some(10), 1, 100).unwrap();
        let requested = drive(&mut pager, &honest(15, 10, 10));
        assert_eq!(page_numbers(&requested), [1, 2]);
    }

    #[test]
    fn page_number_overflow_stops_instead_of_wrapping() {
        let mut pager = Pager::new(LIMITS, Some(10), u32::MAX - 1, 100).unwrap();
        let requested = drive(&mut pager, &vec![(10, None); 10]);
        assert_eq!(page_numbers(&requested), [u32::MAX - 1, u32::MAX]);
        assert_eq!(pager.stop_reason(), Some(StopReason::PageNumberExhausted));
        assert_eq!(pager.next_request(), None);
    }

    #[test]
    fn huge_item_counts_saturate() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        pager.handle_page(usize::MAX, None);
        pager.handle_page(usize::MAX, None);
        assert_eq!(pager.items_seen(), u64::MAX);
        assert_eq!(pager.pages_seen(), 2);
        assert!(!pager.is_finished());
    }

    #[test]
    fn responses_after_the_end_are_ignored() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 100).unwrap();
        pager.handle_page(0, Some(0));
        let finished = pager.clone();
        pager.handle_page(10, Some(100));
        assert_eq!(pager, finished);
        assert_eq!(pager.stop_reason(), Some(StopReason::EmptyPage));
    }

    #[test]
    fn position_resumes_to_an_equal_pager() {
        let mut pager = Pager::new(LIMITS, Some(20), 0, 10).unwrap();
        pager.handle_page(20, Some(70));
        pager.handle_page(20, Some(70));
        let position = pager.position();
        assert_eq!(position.next_page_no, 2);
        assert_eq!(position.pages_seen, 2);
        assert_eq!(position.items_seen, 40);
        assert_eq!(position.stop_reason, None);

        let mut resumed = Pager::resume(LIMITS, position).unwrap();
        assert_eq!(resumed, pager);
        assert_eq!(resumed.next_request(), Some(PageRequest { page_no: 2, page_size: 20 }));
        resumed.handle_page(20, Some(70));
        resumed.handle_page(10, Some(70));
        assert_eq!(resumed.stop_reason(), Some(StopReason::ShortPage));
        assert_eq!(resumed.items_seen(), 70);
        assert_eq!(resumed.pages_seen(), 4);
    }

    #[test]
    fn position_survives_a_json_round_trip() {
        let mut pager = Pager::new(LIMITS, Some(10), 3, 5).unwrap();
        pager.handle_page(10, None);
        let json = serde_json::to_string(&pager.position()).unwrap();
        assert!(json.contains("\"nextPageNo\":4"), "{json}");
        let position: PagePosition = serde_json::from_str(&json).unwrap();
        assert_eq!(Pager::resume(LIMITS, position).unwrap(), pager);

        pager.handle_page(0, None);
        let json = serde_json::to_string(&pager.position()).unwrap();
        let position: PagePosition = serde_json::from_str(&json).unwrap();
        let resumed = Pager::resume(LIMITS, position).unwrap();
        assert_eq!(resumed.stop_reason(), Some(StopReason::EmptyPage));
        assert_eq!(resumed.next_request(), None);
    }

    #[test]
    fn resume_keeps_the_page_guard() {
        let mut pager = Pager::new(LIMITS, Some(10), 0, 3).unwrap();
        pager.handle_page(10, None);
        pager.handle_page(10, None);
        let mut resumed = Pager::resume(LIMITS, pager.position()).unwrap();
        resumed.handle_page(10, None);
        assert_eq!(resumed.stop_reason(), Some(StopReason::MaxPages));
        assert_eq!(resumed.pages_seen(), 3);
    }

    #[test]
    fn resume_rejects_positions_that_break_the_rules() {
        let pager = Pager::new(LIMITS, Some(10), 0, 3).unwrap();
        let good = pager.position();

        let narrower = PagingLimits::new(1, 5, 5);
        assert_eq!(Pager::resume(narrower, good), Err(PagerError::PageSizeOutOfRange { value: 10, min: 1, max: 5 }));

        let mut zero = good;
        zero.max_pages = 0;
        assert_eq!(Pager::resume(LIMITS, zero), Err(PagerError::ZeroMaxPages));

        let mut beyond = good;
        beyond.pages_seen = 4;
        assert_eq!(Pager::resume(LIMITS, beyond), Err(PagerError::PositionBeyondLimit { pages_seen: 4, max_pages: 3 }));

        // A position at its guard that forgot to say it stopped resumes as finished.
        let mut at_guard = good;
        at_guard.pages_seen = 3;
        let resumed = Pager::resume(LIMITS, at_guard).unwrap();
        assert_eq!(resumed.stop_reason(), Some(StopReason::MaxPages));
        assert_eq!(resumed.next_request(), None);
    }

    #[test]
    fn every_script_terminates_within_max_pages() {
        // A small exhaustive sweep: every sequence of three responses drawn from a handful of shapes,
        // with a guard of 3, ends within three requests and with a stop reason.
        let shapes: [Page; 6] = [(0, None), (5, None), (10, None), (10, Some(5)), (10, Some(1_000)), (11, Some(12))];
        for a in shapes {
            for b in shapes {
                for c in shapes {
                    let mut pager = Pager::new(LIMITS, Some(10), 0, 3).unwrap();
                    let requested = drive(&mut pager, &[a, b, c]);
                    assert!(requested.len() <= 3);
                    assert!(pager.stop_reason().is_some());
                    assert_eq!(pager.pages_seen() as usize, requested.len());
                }
            }
        }
    }

    #[test]
    fn slice_page_cuts_pages_and_reports_the_total() {
        let limits = PagingLimits::new(1, 100, 10);
        let items: Vec<u32> = (0..25).collect();
        assert_eq!(slice_page(items.clone(), None, None, limits), (0, 10, 25, (0..10).collect()));
        assert_eq!(slice_page(items.clone(), Some(2), Some(10), limits), (2, 10, 25, (20..25).collect()));
        assert_eq!(slice_page(items.clone(), Some(3), Some(10), limits).3, Vec::<u32>::new());
        assert_eq!(slice_page(items, Some(u32::MAX), Some(100), limits).3, Vec::<u32>::new());
    }

    mod walk {
        use super::super::{StopReason, Walk, WalkError};
        use crate::endpoint::Page;
        use iot_model::{OperationId, OperationInfo, OperationPage};

        fn page(page_no: Option<u32>, total: Option<u64>, ids: std::ops::Range<u32>) -> OperationPage {
            let items = ids.map(|n| OperationInfo::new(OperationId::new(format!("op-{n}")).unwrap())).collect();
            let mut p = OperationPage::from_items(0, 10, 0, items);
            p.page_no = page_no;
            p.total_count = total;
            p
        }

        fn walk(first: u32) -> Walk<OperationInfo> {
            Walk::new(<OperationPage as Page>::LIMITS, Some(10), first, 4).unwrap()
        }

        #[test]
        fn complete_walks_end_ok() {
            let mut w = walk(0);
            assert_eq!(w.handle_page(&page(Some(0), Some(15), 0..10)), None);
            assert_eq!(w.handle_page(&page(Some(1), Some(15), 10..15)), Some(Ok(StopReason::ShortPage)));
            assert!(w.next_request().is_none());
            let mut w = walk(0);
            assert_eq!(w.handle_page(&page(None, Some(10), 0..10)), Some(Ok(StopReason::TotalReached)));
            let mut w = walk(0);
            assert_eq!(w.handle_page(&page(None, None, 0..0)), Some(Ok(StopReason::EmptyPage)));
            // A walk from page 2 of 25 items reads the last 5 and is complete.
            let mut w = walk(2);
            assert_eq!(w.handle_page(&page(Some(2), Some(25), 20..25)), Some(Ok(StopReason::ShortPage)));
        }

        #[test]
        fn a_growing_total_is_new_items_and_the_walk_goes_on() {
            let mut w = walk(0);
            assert_eq!(w.handle_page(&page(Some(0), Some(10), 0..10)), Some(Ok(StopReason::TotalReached)));
            let mut w = walk(0);
            assert_eq!(w.handle_page(&page(Some(0), Some(15), 0..10)), None);
            assert_eq!(w.handle_page(&page(Some(1), Some(22), 10..20)), None);
            assert_eq!(w.handle_page(&page(Some(2), Some(22), 20..22)), Some(Ok(StopReason::ShortPage)));
        }

        #[test]
        fn every_integrity_failure_is_an_error_and_final() {
            let mut w = walk(0);
            w.handle_page(&page(Some(0), Some(100), 0..10));
            assert_eq!(
                w.handle_page(&page(Some(0), Some(100), 10..20)),
                Some(Err(WalkError::PageNumberMismatch { asked: 1, answered: 0 }))
            );
            assert!(w.next_request().is_none());
            assert_eq!(w.handle_page(&page(Some(2), Some(100), 20..30)), None, "nothing restarts a failed walk");

            let mut w = walk(0);
            w.handle_page(&page(None, Some(100), 0..10));
            assert_eq!(w.handle_page(&page(None, Some(100), 0..10)), Some(Err(WalkError::RepeatedPage { page_no: 1 })));

            let mut w = walk(0);
            w.handle_page(&page(Some(0), Some(100), 0..10));
            assert_eq!(
                w.handle_page(&page(Some(1), Some(90), 10..20)),
                Some(Err(WalkError::TotalShrank { page_no: 1, was: 100, now: 90 }))
            );

            let mut w = walk(0);
            assert_eq!(
                w.handle_page(&page(Some(0), Some(100), 0..7)),
                Some(Err(WalkError::Truncated { page_no: 0, seen: 7, total: 100 }))
            );
            let mut w = walk(0);
            w.handle_page(&page(Some(0), Some(100), 0..10));
            assert_eq!(
                w.handle_page(&page(Some(1), Some(100), 0..0)),
                Some(Err(WalkError::Truncated { page_no: 1, seen: 10, total: 100 }))
            );

            let mut w = walk(0);
            for n in 0..3 {
                assert_eq!(w.handle_page(&page(Some(n), None, n * 10..n * 10 + 10)), None);
            }
            assert_eq!(w.handle_page(&page(Some(3), None, 30..40)), Some(Err(WalkError::PageGuard { pages: 4 })));
        }
    }
}
