//! Building blocks every feature uses. Knows nothing about HTTP or features.

pub mod error;
pub mod ids;
pub mod markdown;
pub mod secret;
pub mod time;

pub use error::{Error, FieldErrors, Result};
