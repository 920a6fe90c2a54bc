//! Plain types and their validating constructors. No I/O lives here.

pub mod action_items;
pub mod audio;
pub mod categories;
pub mod console;
pub mod conversations;
pub mod credentials;
pub mod daily_summaries;
pub mod export;
pub mod feed;
pub mod folders;
pub mod goals;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod memories;
pub mod oauth;
pub mod paging;
pub mod patch;
pub mod people;
pub mod scope;
pub mod text;
pub mod time;
pub mod users;
pub mod webhooks;
pub mod wire;
