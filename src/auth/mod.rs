//! Who is calling: credentials, scopes, the middleware that authenticates and rate-limits every
//! developer request, and the extractors handlers use to demand a scope.

pub mod caller;
pub mod client_addr;
pub mod middleware;
pub mod origin;

pub use caller::{AccountCaller, Authorized, Caller, scopes};
