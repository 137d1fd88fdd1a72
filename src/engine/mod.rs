//! Pure rules: values in, values out. No pool, no socket, no clock (time comes in as an
//! argument), no axum. `tests/it/layout.rs` keeps it that way.

pub mod calendar;
pub mod policy;
pub mod sla;
pub mod workflow;
