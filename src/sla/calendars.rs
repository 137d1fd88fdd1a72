//! Business-time calendars as admins keep them: a name, a time zone, one line of hours per
//! weekday in the text form of `engine::calendar` and a list of holidays. What is stored is
//! the normalised text (`format_hours` of the parsed hours, holidays sorted and unique), so
//! `Calendar::parse` reads it back as it was checked.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::core::error::OnConstraint;
use crate::core::ids::CalendarId;
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};
use crate::engine::calendar::{Calendar, format_hours, parse_hours};

/// The weekdays, Monday first: the form field of each day's hours and its name.
pub const DAYS: [(&str, &str); 7] = [
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
];

pub const NAME_MAX: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct SlaCalendar {
    pub id: CalendarId,
    pub name: String,
    pub time_zone: String,
    /// Hours per weekday, Monday first, as `format_hours` writes them.
    pub week: Vec<String>,
    /// `YYYY-MM-DD`, in order.
    pub holidays: Vec<String>,
    /// How many policies and projects count in it.
    #[serde(skip)]
    pub policies: i64,
    #[serde(skip)]
    pub projects: i64,
}

impl SlaCalendar {
    /// The hours of each day with its name, for display (`closed` for none).
    pub fn days(&self) -> Vec<(&'static str, &str)> {
        DAYS.iter()
            .zip(&self.week)
            .map(|((_, name), hours)| {
                (
                    *name,
                    if hours.is_empty() {
                        "closed"
                    } else {
                        hours.as_str()
                    },
                )
            })
            .collect()
    }
}

type Row = (
    CalendarId,
    String,
    String,
    Json<Vec<String>>,
    Vec<String>,
    i64,
    i64,
);

const SELECT: &str = "select c.id, c.name, c.time_zone, c.week, c.holidays::text[],
        (select count(*) from sla_policies p where p.calendar_id = c.id),
        (select count(*) from projects p where p.calendar_id = c.id)
     from sla_calendars c";

fn of_row((id, name, time_zone, week, holidays, policies, projects): Row) -> SlaCalendar {
    SlaCalendar {
        id,
        name,
        time_zone,
        week: week.0,
        holidays,
        policies,
        projects,
    }
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<SlaCalendar>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} order by lower(c.name)"
    )))
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(of_row).collect())
}

pub async fn find(conn: &mut PgConnection, id: CalendarId) -> Result<SlaCalendar> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} where c.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(of_row).ok_or(Error::NotFound)
}

/// What an admin typed: hours one line per weekday (Monday first), holidays one per line.
#[derive(Debug, Clone, Default)]
pub struct CalendarInput {
    pub name: String,
    pub time_zone: String,
    pub week: [String; 7],
    pub holidays: String,
}

/// A checked calendar in its stored, normalised form.
struct Checked {
    name: String,
    time_zone: String,
    week: Vec<String>,
    holidays: Vec<String>,
}

/// Checks every part at once (so each field gets its message), with the rules of
/// `engine::calendar`, and normalises the text.
fn check(input: &CalendarInput) -> Result<Checked> {
    let mut errors = FieldErrors::new();
    let name = input.name.trim();
    if name.is_empty() {
        errors.add("name", "Enter a name.");
    } else if name.chars().count() > NAME_MAX {
        errors.add("name", format!("Use at most {NAME_MAX} characters."));
    }
    let closed = vec![String::new(); 7];
    if let Err((field, message)) = Calendar::parse(&input.time_zone, &closed, &[]) {
        errors.add(field, message);
    }
    let mut open = false;
    for ((field, _), line) in DAYS.iter().zip(&input.week) {
        match parse_hours(line) {
            Ok(hours) => open |= !hours.is_empty(),
            Err(message) => errors.add(field, message),
        }
    }
    if !open
        && errors
            .iter()
            .all(|(f, _)| !DAYS.iter().any(|(d, _)| *d == f))
    {
        errors.add(
            "week",
            "Give working hours for at least one day: clocks never run in a calendar without any.",
        );
    }
    let holidays: Vec<String> = input
        .holidays
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    if let Err((field, message)) = Calendar::parse("UTC", &closed, &holidays) {
        errors.add(field, message);
    }
    errors.into_result()?;
    let calendar = Calendar::parse(&input.time_zone, &input.week, &holidays)
        .map_err(|(field, message)| Error::Invalid(FieldErrors::one(field, message)))?;
    Ok(Checked {
        name: name.to_owned(),
        time_zone: calendar
            .zone
            .iana_name()
            .unwrap_or(input.time_zone.trim())
            .to_owned(),
        week: calendar.week.iter().map(|day| format_hours(day)).collect(),
        holidays: calendar.holidays.iter().map(ToString::to_string).collect(),
    })
}

fn name_taken() -> FieldErrors {
    FieldErrors::one("name", "Another calendar has this name.")
}

pub async fn create(
    conn: &mut PgConnection,
    input: &CalendarInput,
    now: Timestamp,
) -> Result<CalendarId> {
    let c = check(input)?;
    let id = CalendarId::new();
    sqlx::query(
        "insert into sla_calendars (id, name, time_zone, week, holidays, created_at)
         values ($1, $2, $3, $4, $5::date[], $6)",
    )
    .bind(id)
    .bind(&c.name)
    .bind(&c.time_zone)
    .bind(Json(&c.week))
    .bind(&c.holidays)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("sla_calendars_name_key", name_taken)?;
    Ok(id)
}

pub async fn update(conn: &mut PgConnection, id: CalendarId, input: &CalendarInput) -> Result<()> {
    let c = check(input)?;
    let done = sqlx::query(
        "update sla_calendars set name = $2, time_zone = $3, week = $4, holidays = $5::date[]
         where id = $1",
    )
    .bind(id)
    .bind(&c.name)
    .bind(&c.time_zone)
    .bind(Json(&c.week))
    .bind(&c.holidays)
    .execute(conn)
    .await
    .on_constraint("sla_calendars_name_key", name_taken)?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Deletes a calendar no policy or project counts in; otherwise says which do.
pub async fn delete(conn: &mut PgConnection, id: CalendarId) -> Result<()> {
    let (policies, projects): (i64, Vec<String>) = sqlx::query_as(
        "select (select count(*) from sla_policies where calendar_id = $1),
                array(select key from projects where calendar_id = $1 order by key)",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let mut uses = Vec::new();
    if policies > 0 {
        uses.push(format!(
            "{policies} SLA polic{}",
            if policies == 1 { "y" } else { "ies" }
        ));
    }
    if !projects.is_empty() {
        uses.push(format!(
            "project{} {} (business days)",
            if projects.len() == 1 { "" } else { "s" },
            projects.join(", ")
        ));
    }
    if !uses.is_empty() {
        return Err(Error::Invalid(FieldErrors::one(
            "calendar",
            format!(
                "This calendar is used by {}. Choose another calendar there first.",
                uses.join(" and ")
            ),
        )));
    }
    let done = sqlx::query("delete from sla_calendars where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(zone: &str, week: [&str; 7], holidays: &str) -> CalendarInput {
        CalendarInput {
            name: "Office".into(),
            time_zone: zone.into(),
            week: week.map(String::from),
            holidays: holidays.into(),
        }
    }

    const OFFICE: [&str; 7] = [
        "09:00-17:00",
        "09:00-12:00,13:00-17:00",
        "09:00-17:00",
        "09:00-17:00",
        "09:00-17:00",
        "",
        "",
    ];

    #[test]
    fn every_wrong_part_gets_its_own_message() {
        let Err(Error::Invalid(errors)) = check(&input(
            "Mars/Olympus",
            ["09:00-17:00", "", "17:00-09:00", "", "", "", ""],
            "2026-12-25\n25.12.2026",
        )) else {
            panic!("accepted");
        };
        assert!(errors.get("time_zone").is_some());
        assert!(errors.get("wed").is_some());
        assert!(errors.get("mon").is_none());
        assert!(
            errors
                .get("holidays")
                .is_some_and(|m| m.contains("25.12.2026"))
        );
    }

    #[test]
    fn a_calendar_without_hours_is_refused() {
        let Err(Error::Invalid(errors)) = check(&input("UTC", [""; 7], "")) else {
            panic!("accepted");
        };
        assert!(errors.get("week").is_some());
    }

    #[test]
    fn stored_text_is_normalised() {
        let c = check(&input(
            " Europe/Berlin ",
            OFFICE,
            "2026-12-26, 2026-12-25\n2026-12-25",
        ))
        .unwrap();
        assert_eq!(c.time_zone, "Europe/Berlin");
        assert_eq!(c.week[1], "09:00-12:00, 13:00-17:00");
        assert_eq!(c.week[5], "");
        assert_eq!(c.holidays, vec!["2026-12-25", "2026-12-26"]);
    }
}
