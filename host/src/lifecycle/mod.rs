//! A connection's life after connect: periodic credential checks and the `connecting` sweep
//! ([`health`]), and its end, whoever ends it ([`end`]).

pub mod end;
pub mod health;

pub use end::{EndError, end_connection};
pub use health::*;
