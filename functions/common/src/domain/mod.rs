//! Domain types, one concept a file. Each is built only by `parse` (or by
//! the store from a stored value), so holding one is proof that it is valid.

mod email;
mod history_event;
mod idempotency;
mod invalid_value;
mod page;
mod page_request;
mod page_size;
mod precondition;
mod timestamp;
mod user;
mod user_field;
mod user_id;
mod user_name;
mod version;
mod write_context;

pub use email::{EMAIL_LOCAL_PART_MAX_CHARS, EMAIL_MAX_CHARS, Email};
pub use history_event::{ChangeKind, HistoryEvent};
pub use idempotency::{
    IDEMPOTENCY_KEY_MAX_CHARS, IDEMPOTENCY_WINDOW, Idempotency, IdempotencyKey, OPEN_API_CALLER,
};
pub use invalid_value::InvalidValue;
pub use page::Page;
pub use page_request::PageRequest;
pub use page_size::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageSize};
pub use precondition::{Precondition, Versions};
pub use timestamp::Timestamp;
pub use user::{User, UserChanges};
pub use user_field::UserField;
pub use user_id::UserId;
pub use user_name::{NAME_MAX_CHARS, NAME_MIN_CHARS, UserName};
pub use version::Version;
pub use write_context::WriteContext;

#[cfg(test)]
mod identity_properties;
