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

    /// The tree's order: region → country → site / business unit. Any kind may stand at the
    /// top (an organisation without regions or countries); inside another unit, only in the
    /// kind just above. `Err` says where it belongs.
    pub fn may_be_inside(self, parent: Option<UnitKind>) -> Result<(), &'static str> {
        match (self, parent) {
            (_, None)
            | (UnitKind::Country, Some(UnitKind::Region))
            | (UnitKind::Site | UnitKind::BusinessUnit, Some(UnitKind::Country)) => Ok(()),
            (UnitKind::Region, Some(_)) => Err("A region stays at the top level."),
            (UnitKind::Country, Some(_)) => Err("A country goes inside a region (or at the top)."),
            (UnitKind::Site, Some(_)) => Err("A site goes inside a country (or at the top)."),
            (UnitKind::BusinessUnit, Some(_)) => {
                Err("A business unit goes inside a country (or at the top).")
            }
        }
    }
}

/// The kind of a unit, if it exists.
async fn kind_of(conn: &mut PgConnection, id: OrgUnitId) -> Result<Option<UnitKind>> {
    Ok(
        sqlx::query_scalar("select kind from org_units where id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Checks that a unit of `kind` may go inside `parent`; errors on `field`.
async fn check_parent(
    conn: &mut PgConnection,
    kind: UnitKind,
    parent: Option<OrgUnitId>,
    field: &str,
) -> Result<()> {
    let parent_kind = match parent {
        Some(p) => match kind_of(conn, p).await? {
            Some(k) => Some(k),
            None => {
                return Err(Error::Invalid(FieldErrors::one(
                    field,
                    "The parent unit does not exist.",
                )));
            }
        },
        None => None,
    };
    kind.may_be_inside(parent_kind)
        .map_err(|why| Error::Invalid(FieldErrors::one(field, why)))
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
    check_parent(conn, kind, parent, "parent_id").await?;
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

/// The form field of a move.
pub const MOVE_FIELD: &str = "new_parent_id";

/// Moves a unit (with everything inside it) into another unit, or to the top (`None`).
/// Refuses a move into itself or into one of its own sub-units (a loop), and one that breaks
/// the order region → country → site / business unit.
pub async fn move_to(
    conn: &mut PgConnection,
    id: OrgUnitId,
    parent: Option<OrgUnitId>,
) -> Result<()> {
    // One move at a time, so two admins cannot close a loop between them.
    sqlx::query("select pg_advisory_xact_lock(hashtext('org_units.parent_id'))")
        .execute(&mut *conn)
        .await?;
    let kind = kind_of(conn, id).await?.ok_or(Error::NotFound)?;
    let invalid = |message: String| Error::Invalid(FieldErrors::one(MOVE_FIELD, message));
    if let Some(parent) = parent {
        if parent == id {
            return Err(invalid("A unit cannot be inside itself.".into()));
        }
        // From the new parent up to the top: the unit must not be on the way.
        let chain: Vec<(OrgUnitId, String)> = sqlx::query_as(
            "with recursive up (id, depth, seen) as (
                 select $1::uuid, 0, array[$1::uuid]
                 union all
                 select o.parent_id, up.depth + 1, up.seen || o.parent_id
                 from up join org_units o on o.id = up.id
                 where o.parent_id is not null and not o.parent_id = any(up.seen)
             )
             select up.id, o.name from up join org_units o on o.id = up.id order by up.depth",
        )
        .bind(parent)
        .fetch_all(&mut *conn)
        .await?;
        if let Some(at) = chain.iter().position(|(unit, _)| *unit == id) {
            let path: Vec<&str> = chain[..=at].iter().rev().map(|(_, n)| n.as_str()).collect();
            return Err(invalid(format!(
                "That would put a unit inside itself: {} is inside it ({}).",
                chain[0].1,
                path.join(" / ")
            )));
        }
    }
    check_parent(conn, kind, parent, MOVE_FIELD).await?;
    sqlx::query("update org_units set parent_id = $2 where id = $1")
        .bind(id)
        .bind(parent)
        .execute(conn)
        .await
        .on_constraint("org_units_sibling_name_key", || {
            FieldErrors::one(MOVE_FIELD, "There is already a unit with this name there.")
        })?;
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
