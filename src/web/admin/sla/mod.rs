//! Admin: SLA calendars (business hours, holidays) and policies (targets per project ×
//! process × priority). Each change is one transaction with its audit entry.

pub mod calendars;
pub mod policies;
