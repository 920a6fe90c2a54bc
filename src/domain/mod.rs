//! Plain types and their validating constructors. No I/O lives here.

pub mod ids;
pub mod keys;
pub mod paging;
pub mod patch;
pub mod time;
pub mod users;
