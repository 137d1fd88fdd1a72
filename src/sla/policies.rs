//! SLA policies: first-response and resolution targets in business minutes, counted in a
//! calendar, for a project (or any) × process (or any) × priority. The most specific policy
//! wins (`tickets::sla::policies`); one scope has at most one policy
//! (`sla_policies_scope_key`).

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{FromRow, PgConnection};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::{CalendarId, ProcessId, ProjectId, SlaPolicyId};
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

/// The longest target: about a year of office hours. Beyond it a calendar may not hold the
/// time within the three years `engine::calendar` looks ahead.
pub const MAX_MINUTES: i64 = 2_000 * 60;
pub const DEFAULT_WARN_PERCENT: i16 = 80;

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct Policy {
    pub id: SlaPolicyId,
    pub project_id: Option<ProjectId>,
    pub project_key: Option<String>,
    pub process_id: Option<ProcessId>,
    pub process_name: Option<String>,
    pub priority: i16,
    pub calendar_id: CalendarId,
    pub calendar_name: String,
    pub first_response_minutes: Option<i32>,
    pub resolution_minutes: Option<i32>,
    pub warn_percent: i16,
}

impl Policy {
    pub fn first_response(&self) -> String {
        self.first_response_minutes
            .map(format_minutes)
            .unwrap_or_default()
    }

    pub fn resolution(&self) -> String {
        self.resolution_minutes
            .map(format_minutes)
            .unwrap_or_default()
    }
}

const SELECT: &str = "select s.id, s.project_id, p.key as project_key, s.process_id,
        r.name as process_name, s.priority, s.calendar_id, c.name as calendar_name,
        s.first_response_minutes, s.resolution_minutes, s.warn_percent
     from sla_policies s
     join sla_calendars c on c.id = s.calendar_id
     left join projects p on p.id = s.project_id
     left join processes r on r.id = s.process_id";

/// Every policy: general ones (any project, any process) first, then by priority.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Policy>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} order by p.key nulls first, r.name nulls first, s.priority"
    )))
    .fetch_all(conn)
    .await?)
}

pub async fn find(conn: &mut PgConnection, id: SlaPolicyId) -> Result<Policy> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where s.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound)
}

/// A checked-for-shape policy, as the form gives it.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub project_id: Option<ProjectId>,
    pub process_id: Option<ProcessId>,
    pub priority: i16,
    pub calendar_id: CalendarId,
    pub first_response_minutes: Option<i32>,
    pub resolution_minutes: Option<i32>,
    pub warn_percent: i16,
}

fn check(input: &PolicyInput) -> Result<()> {
    let mut errors = FieldErrors::new();
    if !(1..=4).contains(&input.priority) {
        errors.add("priority", "Choose a priority.");
    }
    if input.first_response_minutes.is_none() && input.resolution_minutes.is_none() {
        errors.add(
            "first_response",
            "Give a first-response target, a resolution target or both.",
        );
    }
    for (field, minutes) in [
        ("first_response", input.first_response_minutes),
        ("resolution", input.resolution_minutes),
    ] {
        if minutes.is_some_and(|m| m <= 0 || i64::from(m) > MAX_MINUTES) {
            errors.add(field, "Give a target between 1m and 2000h.");
        }
    }
    if !(1..=99).contains(&input.warn_percent) {
        errors.add("warn_percent", "Give a share between 1 and 99 percent.");
    }
    errors.into_result()
}

fn scope_taken() -> FieldErrors {
    FieldErrors::one(
        "priority",
        "There is already a policy for this project, process and priority: edit that one instead.",
    )
}

const GONE: &str = "The project, process or calendar chosen no longer exists.";

pub async fn create(
    conn: &mut PgConnection,
    input: &PolicyInput,
    now: Timestamp,
) -> Result<SlaPolicyId> {
    check(input)?;
    let id = SlaPolicyId::new();
    sqlx::query(
        "insert into sla_policies (id, project_id, process_id, priority, calendar_id,
                                   first_response_minutes, resolution_minutes, warn_percent, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(input.project_id)
    .bind(input.process_id)
    .bind(input.priority)
    .bind(input.calendar_id)
    .bind(input.first_response_minutes)
    .bind(input.resolution_minutes)
    .bind(input.warn_percent)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("sla_policies_scope_key", scope_taken)
    .map_err(missing_reference("calendar_id", GONE))?;
    Ok(id)
}

pub async fn update(conn: &mut PgConnection, id: SlaPolicyId, input: &PolicyInput) -> Result<()> {
    check(input)?;
    let done = sqlx::query(
        "update sla_policies set project_id = $2, process_id = $3, priority = $4, calendar_id = $5,
                first_response_minutes = $6, resolution_minutes = $7, warn_percent = $8
         where id = $1",
    )
    .bind(id)
    .bind(input.project_id)
    .bind(input.process_id)
    .bind(input.priority)
    .bind(input.calendar_id)
    .bind(input.first_response_minutes)
    .bind(input.resolution_minutes)
    .bind(input.warn_percent)
    .execute(conn)
    .await
    .on_constraint("sla_policies_scope_key", scope_taken)
    .map_err(missing_reference("calendar_id", GONE))?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Deletes a policy no ticket was measured by; such a policy can be changed instead (its
/// tickets keep a reference to the policy they were measured by).
pub async fn delete(conn: &mut PgConnection, id: SlaPolicyId) -> Result<()> {
    let tickets: i64 = sqlx::query_scalar("select count(*) from tickets where sla_policy_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if tickets > 0 {
        return Err(Error::Invalid(FieldErrors::one(
            "policy",
            format!(
                "{tickets} ticket(s) are measured by this policy, so it stays; change its targets instead."
            ),
        )));
    }
    let done = sqlx::query("delete from sla_policies where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// A target as people write it: `4h`, `30m`, `1h 30m` (hours and minutes only); empty is
/// none. The message says what is accepted.
pub fn parse_duration(text: &str) -> Result<Option<i32>, String> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if compact.is_empty() {
        return Ok(None);
    }
    let wrong = || {
        format!(
            "{:?} is not a target: write hours and minutes, like 4h, 30m or 1h 30m.",
            text.trim()
        )
    };
    if compact.contains('d') {
        return Err(
            "Days are not accepted (how long a day is depends on the calendar): write hours, like 16h."
                .into(),
        );
    }
    let mut total: i64 = 0;
    let mut number: Option<i64> = None;
    let mut units = String::new();
    for c in compact.chars() {
        if let Some(digit) = c.to_digit(10) {
            let n = number.unwrap_or(0) * 10 + i64::from(digit);
            if n > MAX_MINUTES {
                return Err("Give a target of at most 2000h.".into());
            }
            number = Some(n);
            continue;
        }
        let (Some(n), unit @ ('h' | 'm')) = (number.take(), c) else {
            return Err(wrong());
        };
        // Hours before minutes, each once.
        if units.contains(unit) || units.contains('m') {
            return Err(wrong());
        }
        units.push(unit);
        total += if unit == 'h' { n * 60 } else { n };
    }
    if number.is_some() {
        return Err(format!(
            "{:?} needs a unit: h for hours or m for minutes.",
            text.trim()
        ));
    }
    if total == 0 {
        return Err("A target must be more than zero.".into());
    }
    if total > MAX_MINUTES {
        return Err("Give a target of at most 2000h.".into());
    }
    i32::try_from(total).map(Some).map_err(|_| wrong())
}

/// The text form of a target (the inverse of `parse_duration`).
pub fn format_minutes(minutes: i32) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_hours_and_minutes_only() {
        for (text, minutes) in [
            ("4h", 240),
            ("30m", 30),
            ("1h 30m", 90),
            ("1H30M", 90),
            (" 90m ", 90),
            ("2000h", 120_000),
        ] {
            assert_eq!(parse_duration(text), Ok(Some(minutes)), "{text}");
        }
        assert_eq!(parse_duration("  "), Ok(None));
        for bad in [
            "2d",
            "4",
            "h",
            "30m 1h",
            "1h 2h",
            "0m",
            "1.5h",
            "2001h",
            "99999999999h",
            "4 hours",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(
            parse_duration("2d")
                .unwrap_err()
                .contains("Days are not accepted")
        );
        assert!(parse_duration("4").unwrap_err().contains("needs a unit"));
    }

    #[test]
    fn targets_format_back_to_what_parses() {
        for minutes in [1, 30, 60, 90, 240, 1_441] {
            assert_eq!(parse_duration(&format_minutes(minutes)), Ok(Some(minutes)));
        }
        assert_eq!(format_minutes(90), "1h 30m");
    }
}
