//! Pages without collecting: the window a page covers, and a Fenwick tree that finds the n-th member of a set
//! of positions in logarithmic time.
//!
//! `iot_proto::pager::slice_page` takes every matching item and drops all but a page; at a million subtasks that
//! is a million items built per page. These give the same page numbers, sizes and totals from the positions
//! alone, so a query builds only the items it returns.

use iot_proto::pager::PagingLimits;

/// The part of a list one page covers: the same `pageNo`, `pageSize` and skip as `slice_page` computes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageWindow {
    pub(crate) page_no: u32,
    pub(crate) page_size: u32,
    skip: u64,
}

impl PageWindow {
    pub(crate) fn new(page_no: Option<u32>, page_size: Option<u32>, limits: PagingLimits) -> Self {
        let page_no = page_no.unwrap_or(0);
        let page_size = page_size.unwrap_or(limits.page_size_default).max(1);
        Self { page_no, page_size, skip: u64::from(page_no) * u64::from(page_size) }
    }

    /// The page's positions, `0..total` being the list's.
    pub(crate) fn indices(&self, total: u64) -> std::ops::Range<u64> {
        self.skip.min(total)..self.skip.saturating_add(u64::from(self.page_size)).min(total)
    }

    /// The total and the page's positions of an unfiltered list of `len` items.
    pub(crate) fn range(&self, len: u64) -> (u64, Vec<usize>) {
        (len, self.indices(len).map(|i| i as usize).collect())
    }

    /// The number of items of `items` that `keep` accepts, and those of them on the page; every item is looked
    /// at, but only the page's are kept.
    pub(crate) fn filter<T>(&self, items: impl Iterator<Item = T>, mut keep: impl FnMut(&T) -> bool) -> (u64, Vec<T>) {
        let mut total = 0u64;
        let mut page = Vec::new();
        for item in items {
            if keep(&item) {
                if self.indices(u64::MAX).contains(&total) {
                    page.push(item);
                }
                total += 1;
            }
        }
        (total, page)
    }

    /// The page of the items `keep` accepts, when their number `total` is already known: the walk stops as soon
    /// as the page is full, and does not start when the page lies past the end.
    pub(crate) fn first_matches<T, U>(
        &self,
        total: u64,
        items: impl Iterator<Item = T>,
        mut keep: impl FnMut(&T) -> bool,
        map: impl FnMut(T) -> U,
    ) -> Vec<U> {
        let wanted = self.indices(total);
        if wanted.is_empty() {
            return Vec::new();
        }
        let (skip, take) = (wanted.start as usize, (wanted.end - wanted.start) as usize);
        items.filter(|i| keep(i)).skip(skip).take(take).map(map).collect()
    }
}

/// A Fenwick (binary indexed) tree of counts over positions `0..len`, growable at the end.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fenwick {
    tree: Vec<u32>,
}

impl Fenwick {
    /// The sum of the first `n` positions.
    fn prefix(&self, mut n: usize) -> u32 {
        let mut sum = 0u32;
        while n > 0 {
            sum = sum.wrapping_add(self.tree.get(n - 1).copied().unwrap_or(0));
            n &= n - 1;
        }
        sum
    }

    /// Appends a position holding `value`.
    pub(crate) fn push(&mut self, value: u32) {
        let n = self.tree.len() + 1;
        let low = n & n.wrapping_neg();
        // The new node covers positions (n - low, n]; the ones before n are already summed.
        let node = value.wrapping_add(self.prefix(n - 1)).wrapping_sub(self.prefix(n - low));
        self.tree.push(node);
    }

    /// Adds `delta` to position `pos`.
    pub(crate) fn add(&mut self, pos: usize, delta: i32) {
        let mut n = pos + 1;
        while let Some(node) = self.tree.get_mut(n - 1) {
            *node = node.wrapping_add_signed(delta);
            n += n & n.wrapping_neg();
        }
    }

    /// The sum of every position.
    pub(crate) fn total(&self) -> u32 {
        self.prefix(self.tree.len())
    }

    /// The position of the `k`-th unit (from 0) when positions hold 0 or 1: the `k`-th member of the set.
    pub(crate) fn nth(&self, k: u32) -> Option<usize> {
        if k >= self.total() {
            return None;
        }
        let len = self.tree.len();
        let (mut pos, mut rest) = (0usize, k + 1);
        let mut step = if len == 0 { 0 } else { 1usize << (usize::BITS - 1 - len.leading_zeros()) };
        while step > 0 {
            if let Some(node) = self.tree.get(pos + step - 1).filter(|n| **n < rest) {
                pos += step;
                rest -= *node;
            }
            step >>= 1;
        }
        Some(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iot_proto::UPGRADE_PAGING;

    #[test]
    fn nth_member_agrees_with_a_plain_scan_while_members_come_and_go() {
        let mut f = Fenwick::default();
        let mut plain = Vec::new();
        for i in 0..300u32 {
            let v = u32::from(i % 3 == 0 || i % 7 == 0);
            f.push(v);
            plain.push(v);
            if i % 11 == 5 {
                let p = (i / 2) as usize;
                let d = if plain[p] == 1 { -1 } else { 1 };
                f.add(p, d);
                plain[p] = plain[p].wrapping_add_signed(d);
            }
            let members: Vec<usize> = (0..plain.len()).filter(|p| plain[*p] == 1).collect();
            assert_eq!(f.total() as usize, members.len());
            for (k, want) in members.iter().enumerate() {
                assert_eq!(f.nth(k as u32), Some(*want), "member {k} after {i}");
            }
            assert_eq!(f.nth(members.len() as u32), None);
        }
    }

    #[test]
    fn windows_match_slice_page() {
        for (no, size, len) in [(None, None, 25), (Some(1), Some(7), 20), (Some(3), Some(7), 20), (Some(9), None, 3)] {
            let items: Vec<usize> = (0..len).collect();
            let (p, s, total, page) = iot_proto::pager::slice_page(items.clone(), no, size, UPGRADE_PAGING);
            let w = PageWindow::new(no, size, UPGRADE_PAGING);
            assert_eq!((w.page_no, w.page_size), (p, s));
            assert_eq!(w.range(len as u64), (total, page.clone()));
            let odd = |i: &usize| i % 2 == 1;
            let (p2, s2, t2, page2) =
                iot_proto::pager::slice_page(items.iter().copied().filter(odd).collect(), no, size, UPGRADE_PAGING);
            assert_eq!((w.page_no, w.page_size), (p2, s2));
            assert_eq!(w.filter(items.iter().copied(), odd), (t2, page2.clone()));
            assert_eq!(w.first_matches(t2, items.iter().copied(), odd, |i| i), page2);
        }
    }
}
