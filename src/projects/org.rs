//! The organisation tree: region → country → site / business unit.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgConnection};

use crate::core::error::{OnConstraint, missing_reference};
use crate::core::ids::OrgUnitId;
use crate::core::time::to_db;
use crate::core::{Error, FieldErrors, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Region,
    Country,
    Site,
    BusinessUnit,
}

impl UnitKind {
    pub const ALL: [UnitKind; 4] = [
        UnitKind::Region,
        UnitKind::Country,
        UnitKind::Site,
        UnitKind::BusinessUnit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Region => "region",
            UnitKind::Country => "country",
            UnitKind::Site => "site",
            UnitKind::BusinessUnit => "business_unit",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            UnitKind::Region => "Region",
            UnitKind::Country => "Country",
            UnitKind::Site => "Site",
            UnitKind::BusinessUnit => "Business unit",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A unit with its depth in the tree and its full path ("Europe / Germany / Berlin").
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct OrgUnit {
    pub id: OrgUnitId,
    pub parent_id: Option<OrgUnitId>,
    pub name: String,
    pub kind: UnitKind,
    pub depth: i32,
    pub path: String,
}

/// The whole tree, depth-first in name order.
pub async fn tree(conn: &mut PgConnection) -> Result<Vec<OrgUnit>> {
    Ok(sqlx::query_as(
        "with recursive t as (
            select id, parent_id, name, kind, 0 as depth, name as path, array[lower(name)] as sort
            from org_units where parent_id is null
            union all
            select o.id, o.parent_id, o.name, o.kind, t.depth + 1, t.path || ' / ' || o.name,
                   t.sort || lower(o.name)
            from org_units o join t on o.parent_id = t.id
         )
         select id, parent_id, name, kind, depth, path from t order by sort",
    )
    .fetch_all(conn)
    .await?)
}

pub async fn create(
    conn: &mut PgConnection,
    parent: Option<OrgUnitId>,
    name: &str,
    kind: UnitKind,
    now: Timestamp,
) -> Result<OrgUnitId> {
    if name.trim().is_empty() {
        return Err(Error::Invalid(FieldErrors::one("name", "Enter a name.")));
    }
    let id = OrgUnitId::new();
    sqlx::query(
        "insert into org_units (id, parent_id, name, kind, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(parent)
    .bind(name.trim())
    .bind(kind)
    .bind(to_db(now))
    .execute(conn)
    .await
    .on_constraint("org_units_sibling_name_key", || {
        FieldErrors::one("name", "There is already a unit with this name here.")
    })
    .map_err(missing_reference(
        "parent_id",
        "The parent unit does not exist.",
    ))?;
    Ok(id)
}

pub async fn rename(conn: &mut PgConnection, id: OrgUnitId, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::Invalid(FieldErrors::one("name", "Enter a name.")));
    }
    let done = sqlx::query("update org_units set name = $2 where id = $1")
        .bind(id)
        .bind(name.trim())
        .execute(conn)
        .await
        .on_constraint("org_units_sibling_name_key", || {
            FieldErrors::one("name", "There is already a unit with this name here.")
        })?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Deletes a unit nothing refers to; otherwise says what does.
pub async fn delete(conn: &mut PgConnection, id: OrgUnitId) -> Result<()> {
    let (children, users, tickets, rules, routes): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from org_units where parent_id = $1),
                (select count(*) from users where org_unit_id = $1),
                (select count(*) from tickets where org_unit_id = $1 or site_id = $1),
                (select count(*) from domain_rules where org_unit_id = $1),
                (select count(*) from routing_rules where site_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let mut refs = Vec::new();
    for (n, what) in [
        (children, "sub-unit(s)"),
        (users, "user(s)"),
        (tickets, "ticket(s)"),
        (rules, "domain rule(s)"),
        (routes, "routing rule(s)"),
    ] {
        if n > 0 {
            refs.push(format!("{n} {what}"));
        }
    }
    if !refs.is_empty() {
        return Err(Error::Invalid(FieldErrors::one(
            "unit",
            format!("This unit is still used by {}.", refs.join(", ")),
        )));
    }
    let done = sqlx::query("delete from org_units where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}
