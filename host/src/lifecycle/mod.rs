//! A connection's life after connect: periodic credential checks and the `connecting` sweep
//! ([`health`]), and its end, whoever ends it ([`end`]); the end of an account or of one
//! contact's data ([`erase`]).

pub mod end;
pub mod erase;
pub mod health;

pub use end::{EndError, end_connection};
pub use health::*;
