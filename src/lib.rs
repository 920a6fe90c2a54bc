//! omi-server: a self-hostable implementation of the Omi Developer API.
#![forbid(unsafe_code)]

pub mod processing;
