use super::PageSize;

/// One page of a list, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Whether more items follow the last one.
    pub more: bool,
}

impl<T> Page<T> {
    /// The page from up to `size + 1` items read in order: the extra item
    /// only tells that another page follows, so the last page never comes
    /// with a cursor to an empty page.
    pub fn from_one_extra(mut items: Vec<T>, size: PageSize) -> Self {
        let more = items.len() > size.get();
        items.truncate(size.get());
        Self { items, more }
    }
}
