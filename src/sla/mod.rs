//! SLA configuration: business-time calendars and the policies that give first-response and
//! resolution targets per project × process × priority. Owns `sla_calendars` and
//! `sla_policies`. It does not run clocks: `tickets::sla` replays them from a ticket's events
//! with these policies, and `engine::calendar` does the business-time arithmetic.

pub mod calendars;
pub mod policies;
