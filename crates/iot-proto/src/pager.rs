//! Sans-IO pagination: decides which page to request next and when a listing is finished.
//!
//! The platform pages its listings with `pageNo` (0-based by default) and `pageSize`, and reports a
//! `totalCount` that may change while a client walks the pages. A [`Walk`] never trusts a single signal to
//! end: it stops on an empty page, a short page, the reported total being reached, a caller-chosen maximum
//! number of pages, or the page number running out of range, and it checks every answer against the one
//! before it. Whatever the server answers, a walk therefore ends after at most `max_pages` responses, either
//! complete or with a [`WalkError`].
//!
//! [`slice_page`] is the server side of the same rules, for the simulator.

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
    /// Describes a family of listing APIs; [`Walk::new`] checks that the three values are consistent.
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

/// Why a [`Walk`] ended complete: every item the listing promised was received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The last page held no items.
    EmptyPage,
    /// The last page held fewer items than the page size.
    ShortPage,
    /// The items seen so far reached the `totalCount` of the last page.
    TotalReached,
}

/// Why a [`Walk`] could not be started.
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
    /// The page held more items than the page size asked for: the server ignores `pageSize`, so the pages do
    /// not line up with the page numbers asked for and items may be skipped or repeated (and a client that
    /// let it would hold more than it asked for).
    #[error("page {page_no} holds {held} items, more than the {asked} asked for")]
    OversizedPage {
        /// The page.
        page_no: u32,
        /// The page size asked for.
        asked: u32,
        /// The items the page held, readable and not.
        held: u64,
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

/// A paged walk with integrity checks: it counts pages and items, and reads each page's echo of `pageNo`, its
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
    page_size: u32,
    next_page_no: u32,
    max_pages: u32,
    pages_seen: u32,
    /// Items up to the end of the last page handled, counting the pages before the walk's first page (a walk
    /// may start part-way through a listing) and any duplicates a shifting listing produced.
    seen: u64,
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
    /// Starts a walk at `first_page` that handles at most `max_pages` pages.
    ///
    /// `page_size` `None` picks the default of `limits`. Fails when the page size lies outside the limits, the
    /// limits are inconsistent, or `max_pages` is zero.
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
        Ok(Self {
            page_size,
            next_page_no: first_page,
            max_pages,
            pages_seen: 0,
            seen: u64::from(first_page).saturating_mul(u64::from(page_size)),
            total: None,
            previous: None,
            outcome: None,
        })
    }

    /// The page to fetch next, or `None` once the walk has an outcome. Call it before each request.
    #[must_use]
    pub fn next_request(&self) -> Option<PageRequest> {
        match self.outcome {
            Some(_) => None,
            None => Some(PageRequest { page_no: self.next_page_no, page_size: self.page_size }),
        }
    }

    /// Records the answer to the request from [`next_request`](Self::next_request); returns the walk's outcome
    /// once it has one (and `None` while it goes on). Calls after the outcome are ignored, so a stray answer
    /// cannot restart the walk.
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
        let items = u64::try_from(page.item_count()).unwrap_or(u64::MAX);
        if items > u64::from(self.page_size) {
            return Some(Err(WalkError::OversizedPage { page_no, asked: self.page_size, held: items }));
        }
        self.pages_seen = self.pages_seen.saturating_add(1);
        self.seen = self.seen.saturating_add(items);
        let seen = self.seen;
        // The end of the listing comes first: a page the server cut short says more than any count.
        if items < u64::from(self.page_size) {
            let reason = if items == 0 { StopReason::EmptyPage } else { StopReason::ShortPage };
            return Some(match self.total {
                Some(total) if seen < total => Err(WalkError::Truncated { page_no, seen, total }),
                _ => Ok(reason),
            });
        }
        if self.total.is_some_and(|total| seen >= total) {
            return Some(Ok(StopReason::TotalReached));
        }
        // The guards come last, so that a walk whose last allowed page completes the listing is complete.
        if self.pages_seen >= self.max_pages {
            return Some(Err(WalkError::PageGuard { pages: self.pages_seen }));
        }
        match self.next_page_no.checked_add(1) {
            Some(next) => {
                self.next_page_no = next;
                None
            }
            None => Some(Err(WalkError::PageNumberExhausted)),
        }
    }

    /// How the walk ended: `Ok` with the reason it is complete, or the error that stopped it; `None` while it
    /// goes on.
    pub fn outcome(&self) -> Option<&Result<StopReason, WalkError>> {
        self.outcome.as_ref()
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
    use crate::endpoint::Page;
    use iot_model::{OperationId, OperationInfo, OperationPage};

    const LIMITS: PagingLimits = <OperationPage as Page>::LIMITS;

    /// A scripted answer: the item count and the reported total.
    type Answer = (usize, Option<u64>);

    fn item(name: String) -> OperationInfo {
        OperationInfo::new(OperationId::new(name).unwrap())
    }

    /// A page with the given echo of `pageNo`, total and items `op-{n}` for `n` in `ids`.
    fn page(page_no: Option<u32>, total: Option<u64>, ids: std::ops::Range<u32>) -> OperationPage {
        let mut p = OperationPage::from_items(0, 10, 0, ids.map(|n| item(format!("op-{n}"))).collect());
        p.page_no = page_no;
        p.total_count = total;
        p
    }

    fn walk(first: u32) -> Walk<OperationInfo> {
        Walk::new(LIMITS, Some(10), first, 4).unwrap()
    }

    /// Drives `walk` against `script` (answer `i` answers the `i`-th request, echoing its page number and
    /// holding `count` items no other page holds), bounded by the script length so a walk that never ends
    /// fails the test instead of hanging it. Returns the page numbers asked for and the outcome.
    fn drive(walk: &mut Walk<OperationInfo>, script: &[Answer]) -> (Vec<u32>, Result<StopReason, WalkError>) {
        let mut requested = Vec::new();
        for &(count, total) in script {
            let Some(request) = walk.next_request() else {
                break;
            };
            requested.push(request.page_no);
            let items = (0..count).map(|i| item(format!("op-{}-{i}", request.page_no))).collect();
            let mut answer = OperationPage::from_items(request.page_no, request.page_size, 0, items);
            answer.total_count = total;
            walk.handle_page(&answer);
        }
        let outcome = walk.outcome().cloned().expect("the script ran out before the walk ended");
        (requested, outcome)
    }

    /// A server holding `total` items, answering any page honestly.
    fn honest(total: u64, pages: u64) -> Vec<Answer> {
        (0..pages)
            .map(|page| (usize::try_from(total.saturating_sub(page * 10).min(10)).unwrap(), Some(total)))
            .collect()
    }

    #[test]
    fn default_page_size_is_used_when_none_is_given() {
        let walk = Walk::<OperationInfo>::new(LIMITS, None, 0, 5).unwrap();
        assert_eq!(walk.next_request(), Some(PageRequest { page_no: 0, page_size: 10 }));
        assert_eq!(walk.outcome(), None);
    }

    #[test]
    fn page_size_outside_the_limits_is_rejected_with_value_and_range() {
        for bad in [0, 101, u32::MAX] {
            let err = Walk::<OperationInfo>::new(LIMITS, Some(bad), 0, 5).unwrap_err();
            assert_eq!(err, PagerError::PageSizeOutOfRange { value: bad, min: 1, max: 100 });
            let shown = err.to_string();
            assert!(shown.contains(&bad.to_string()), "{shown}");
            assert!(shown.contains("1..=100"), "{shown}");
        }
        for good in [1, 50, 100] {
            let walk = Walk::<OperationInfo>::new(LIMITS, Some(good), 0, 5).unwrap();
            assert_eq!(walk.next_request().map(|r| r.page_size), Some(good));
        }
    }

    #[test]
    fn inconsistent_limits_and_zero_max_pages_are_rejected() {
        for limits in [PagingLimits::new(0, 100, 10), PagingLimits::new(20, 100, 10), PagingLimits::new(1, 5, 10)] {
            let started = Walk::<OperationInfo>::new(limits, Some(5), 0, 5);
            assert!(matches!(started, Err(PagerError::InconsistentLimits { .. })));
        }
        assert_eq!(Walk::<OperationInfo>::new(LIMITS, None, 0, 0).unwrap_err(), PagerError::ZeroMaxPages);
    }

    #[test]
    fn an_honest_server_ends_on_the_short_page_the_total_or_the_empty_page() {
        let mut w = walk(0);
        assert_eq!(drive(&mut w, &honest(25, 10)), (vec![0, 1, 2], Ok(StopReason::ShortPage)));
        assert_eq!(w.next_request(), None);
        // A total that is a multiple of the page size needs no extra empty page.
        assert_eq!(drive(&mut walk(0), &honest(30, 10)), (vec![0, 1, 2], Ok(StopReason::TotalReached)));
        assert_eq!(drive(&mut walk(0), &honest(0, 10)), (vec![0], Ok(StopReason::EmptyPage)));
        // A full page claiming there is nothing at all still ends the walk.
        assert_eq!(drive(&mut walk(0), &[(10, Some(0)), (10, Some(0))]), (vec![0], Ok(StopReason::TotalReached)));
    }

    #[test]
    fn missing_total_walks_until_a_short_or_empty_page() {
        let script = [(10, None), (10, None), (3, None), (10, None)];
        assert_eq!(drive(&mut walk(0), &script), (vec![0, 1, 2], Ok(StopReason::ShortPage)));
        let script = [(10, None), (10, None), (0, None), (10, None)];
        assert_eq!(drive(&mut walk(0), &script), (vec![0, 1, 2], Ok(StopReason::EmptyPage)));
    }

    #[test]
    fn a_shifted_listing_counts_its_duplicate_and_still_ends() {
        // An insertion at the head shifts the listing: page 1 repeats the last item of page 0, so the walk
        // counts more items than distinct ones and reaches the total one item early (filtering duplicates
        // is the caller's business).
        let script = [(10, Some(25)), (10, Some(26)), (10, Some(26)), (10, Some(26))];
        assert_eq!(drive(&mut walk(0), &script), (vec![0, 1, 2], Ok(StopReason::TotalReached)));
    }

    #[test]
    fn a_server_that_always_answers_full_pages_stops_at_the_guard() {
        let mut w = Walk::new(LIMITS, Some(10), 0, 7).unwrap();
        assert_eq!(drive(&mut w, &vec![(10, None); 1_000]), ((0..7).collect(), Err(WalkError::PageGuard { pages: 7 })));
        // A total the server never lets us reach behaves the same.
        let mut w = Walk::new(LIMITS, Some(10), 0, 3).unwrap();
        let (requested, outcome) = drive(&mut w, &vec![(10, Some(u64::MAX)); 1_000]);
        assert_eq!((requested.len(), outcome), (3, Err(WalkError::PageGuard { pages: 3 })));
    }

    #[test]
    fn a_page_with_more_items_than_requested_ends_the_walk_with_an_error() {
        // A server that ignores pageSize and answers more items than asked: page 1 of 50-item pages does not
        // follow page 0 of 10-item pages, so the walk cannot tell what it skipped.
        let script = [(50, Some(60)), (50, Some(60))];
        let outcome = Err(WalkError::OversizedPage { page_no: 0, asked: 10, held: 50 });
        assert_eq!(drive(&mut walk(0), &script), (vec![0], outcome));
        // One item too many is enough, after good pages too; the walk stays ended.
        let mut w = walk(0);
        assert_eq!(w.handle_page(&page(Some(0), Some(30), 0..10)), None);
        let outcome = Some(Err(WalkError::OversizedPage { page_no: 1, asked: 10, held: 11 }));
        assert_eq!(w.handle_page(&page(Some(1), Some(30), 10..21)), outcome);
        assert!(w.next_request().is_none());
        // Unreadable items count: the page held them.
        let mut w = walk(0);
        let mut p = page(Some(0), Some(30), 0..10);
        p.rejected.push(iot_model::RejectedItem::new(10, "operationId", "missing", "{}"));
        assert!(matches!(w.handle_page(&p), Some(Err(WalkError::OversizedPage { held: 11, .. }))));
    }

    #[test]
    fn stop_precedence_is_empty_then_short_then_total_then_guard() {
        let cases: [(Answer, Result<StopReason, WalkError>); 4] = [
            ((0, Some(0)), Ok(StopReason::EmptyPage)),
            ((3, Some(3)), Ok(StopReason::ShortPage)),
            ((10, Some(10)), Ok(StopReason::TotalReached)),
            ((10, Some(11)), Err(WalkError::PageGuard { pages: 1 })),
        ];
        for (answer, expected) in cases {
            let mut w = Walk::new(LIMITS, Some(10), 0, 1).unwrap();
            assert_eq!(drive(&mut w, &[answer]), (vec![0], expected), "{answer:?}");
        }
    }

    #[test]
    fn a_walk_from_a_later_page_counts_the_pages_before_it() {
        // Pages 1 to 3 of 35 items hold items 10 to 34: the short page 3 completes the listing.
        let script = [(10, Some(35)), (10, Some(35)), (5, Some(35)), (10, Some(35))];
        assert_eq!(drive(&mut walk(1), &script), (vec![1, 2, 3], Ok(StopReason::ShortPage)));
    }

    #[test]
    fn page_number_overflow_stops_instead_of_wrapping() {
        let mut w = Walk::new(LIMITS, Some(10), u32::MAX - 1, 100).unwrap();
        let outcome = drive(&mut w, &vec![(10, None); 10]);
        assert_eq!(outcome, (vec![u32::MAX - 1, u32::MAX], Err(WalkError::PageNumberExhausted)));
        assert_eq!(w.next_request(), None);
    }

    #[test]
    fn every_script_ends_within_the_guard() {
        // A small exhaustive sweep: every sequence of three answers drawn from a handful of shapes, with a
        // guard of 3, ends within three requests with an outcome.
        let shapes: [Answer; 6] = [(0, None), (5, None), (10, None), (10, Some(5)), (10, Some(1_000)), (11, Some(12))];
        for a in shapes {
            for b in shapes {
                for c in shapes {
                    let mut w = Walk::new(LIMITS, Some(10), 0, 3).unwrap();
                    let (requested, _) = drive(&mut w, &[a, b, c]);
                    assert!(requested.len() <= 3);
                    assert_eq!(w.next_request(), None);
                }
            }
        }
    }

    #[test]
    fn complete_walks_end_ok_and_stay_ended() {
        let mut w = walk(0);
        assert_eq!(w.handle_page(&page(Some(0), Some(15), 0..10)), None);
        assert_eq!(w.handle_page(&page(Some(1), Some(15), 10..15)), Some(Ok(StopReason::ShortPage)));
        assert!(w.next_request().is_none());
        assert_eq!(w.handle_page(&page(Some(2), Some(100), 20..30)), None, "nothing restarts a finished walk");
        assert_eq!(w.outcome(), Some(&Ok(StopReason::ShortPage)));
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

        // The listing had 100 items when the walk began, then some were deleted: later pages shifted.
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

    #[test]
    fn slice_page_cuts_pages_and_reports_the_total() {
        let limits = PagingLimits::new(1, 100, 10);
        let items: Vec<u32> = (0..25).collect();
        assert_eq!(slice_page(items.clone(), None, None, limits), (0, 10, 25, (0..10).collect()));
        assert_eq!(slice_page(items.clone(), Some(2), Some(10), limits), (2, 10, 25, (20..25).collect()));
        assert_eq!(slice_page(items.clone(), Some(3), Some(10), limits).3, Vec::<u32>::new());
        assert_eq!(slice_page(items, Some(u32::MAX), Some(100), limits).3, Vec::<u32>::new());
    }
}
