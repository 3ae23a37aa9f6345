//! An item of a page that could not be read: where it was, what was wrong, and what it looked like.

use std::fmt;

/// One item of a page that the tolerant reader could not turn into its type.
///
/// A page with one unreadable item still yields its readable items; the unreadable ones are kept here, in
/// the page's `rejected` list, so nothing is dropped in silence. Paged walks report each of them as an
/// error in the item's place.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedItem {
    /// Position of the item on its page, from 0 (among all the page's items, readable or not).
    pub index: usize,
    /// JSON path of the failure inside the item, such as `createTime` (`.` for the item itself).
    pub path: String,
    /// What was wrong there.
    pub message: String,
    /// A bounded excerpt of the item's JSON, for diagnosis.
    pub excerpt: String,
}

impl RejectedItem {
    /// Describes the item at `index` that failed at `path` inside it.
    pub fn new(index: usize, path: impl Into<String>, message: impl Into<String>, excerpt: impl Into<String>) -> Self {
        Self { index, path: path.into(), message: message.into(), excerpt: excerpt.into() }
    }
}

impl fmt::Display for RejectedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {} of the page is unreadable at `{}`: {}", self.index, self.path, self.message)
    }
}

impl std::error::Error for RejectedItem {}
