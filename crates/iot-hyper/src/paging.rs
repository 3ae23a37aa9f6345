//! Paged walks as `Stream`s: page by page, or item by item with one page in memory at a time.
//!
//! A `Stream` (rather than an inherent `async fn next`) because it composes with the `futures` combinators
//! users already know (`try_next`, `try_for_each`, `take`, `buffered`...), and `Stream` is the type every
//! runtime's ecosystem accepts. The walk itself is iot-proto's [`Pager`]; this file only feeds it.

use futures_core::Stream;
use futures_util::{StreamExt, TryStreamExt, stream};
use iot_proto::pager::{PageRequest, Pager};
use iot_proto::{Page, Paged};

use crate::{Client, Error};

impl Client {
    /// Walks every page of a paged query, starting at the request's `pageNo` (0 when unset), with its
    /// `pageSize` (the family default when unset). The walk stops on an empty page, a short page, `totalCount`
    /// reached, or the configured page guard; an error ends it after being yielded.
    pub fn pages<E>(&self, request: E) -> impl Stream<Item = Result<E::Response, Error>> + Send + 'static
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
    {
        let start = Pager::new(
            <E::Response as Page>::LIMITS,
            request.page_size(),
            request.page_no().unwrap_or(0),
            self.config().max_pages,
        )
        .map_err(Error::Paging);
        let client = self.clone();
        let state = Some((client, request, start));
        stream::unfold(state, |state| async move {
            let (client, mut request, pager) = state?;
            let mut pager = match pager {
                Ok(p) => p,
                Err(e) => return Some((Err(e), None)),
            };
            let PageRequest { page_no, page_size } = pager.next_request()?;
            request.set_page(page_no, page_size);
            match client.send(&request).await {
                Ok(page) => {
                    pager.handle_page(page.items().len(), page.total_count());
                    Some((Ok(page), Some((client, request, Ok(pager)))))
                }
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// Walks every item of a paged query, holding one page in memory at a time.
    pub fn items<E>(
        &self,
        request: E,
    ) -> impl Stream<Item = Result<<E::Response as Page>::Item, Error>> + Send + 'static
    where
        E: Paged + Send + Sync + 'static,
        E::Response: Page + Send,
        <E::Response as Page>::Item: Send,
    {
        self.pages(request).map_ok(|page| stream::iter(page.into_items().into_iter().map(Ok))).try_flatten().boxed()
    }
}
