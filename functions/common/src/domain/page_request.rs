//! [`PageRequest`]: which page of a list to read.

use super::PageSize;

/// Where a page of a list starts and how many items it holds: the items
/// after the key `after` (from the first with `None`), `size` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<K> {
    /// The key of the last item of the previous page.
    pub after: Option<K>,
    /// How many items the page holds at most.
    pub size: PageSize,
}

impl<K> PageRequest<K> {
    /// The first page of `size` items.
    pub fn first(size: PageSize) -> Self {
        Self { after: None, size }
    }

    /// The page of `size` items after `after`, if any.
    pub fn after(after: Option<K>, size: PageSize) -> Self {
        Self { after, size }
    }
}
