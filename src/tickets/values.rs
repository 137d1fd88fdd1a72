//! A ticket's process field values: parsed from a form, their references checked, and the
//! system and site they name (copied to columns for queues).

use std::collections::BTreeMap;

use sqlx::PgConnection;

use crate::core::ids::{OrgUnitId, SystemId};
use crate::core::{FieldErrors, Result};
use crate::engine::workflow::{Definition, FieldKind, Value};

/// Parses form values for the fields of `def`; unknown field names are kept as text so the
/// engine can refuse them by name.
pub fn parse_values(
    def: &Definition,
    raw: &BTreeMap<String, Vec<String>>,
) -> (BTreeMap<String, Value>, FieldErrors) {
    let mut values = BTreeMap::new();
    let mut errors = FieldErrors::new();
    for (key, sent) in raw {
        match def.field(key) {
            Some(field) => match field.parse(sent) {
                Ok(Some(v)) => {
                    values.insert(key.clone(), v);
                }
                Ok(None) => {}
                Err(why) => errors.add(key, why),
            },
            None => {
                values.insert(key.clone(), Value::Text(sent.join(",")));
            }
        }
    }
    (values, errors)
}

/// Reference values that point to nothing they may: a user who is not an active user, a group,
/// system or site that does not exist. A forged id gets a message beside its field.
pub async fn check_references(
    conn: &mut PgConnection,
    def: &Definition,
    values: &BTreeMap<String, Value>,
) -> Result<FieldErrors> {
    let mut errors = FieldErrors::new();
    for field in &def.fields {
        let Some(Value::Text(text)) = values.get(&field.key) else {
            continue;
        };
        // Not an id at all: `Field::check` said so already.
        let Ok(id) = uuid::Uuid::parse_str(text) else {
            continue;
        };
        let sql = match field.kind {
            FieldKind::User => "select exists (select 1 from users where id = $1 and active)",
            FieldKind::Group => "select exists (select 1 from groups where id = $1)",
            FieldKind::System => "select exists (select 1 from systems where id = $1)",
            FieldKind::Site => {
                "select exists (select 1 from org_units where id = $1 and kind in ('site', 'business_unit'))"
            }
            _ => continue,
        };
        let exists: bool = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            errors.add(
                &field.key,
                format!("{}: choose from the list.", field.label),
            );
        }
    }
    Ok(errors)
}

/// The system and site the field values point to, copied to columns for queues.
pub(super) fn references(
    def: &Definition,
    values: &BTreeMap<String, Value>,
) -> (Option<SystemId>, Option<OrgUnitId>) {
    let first = |kind: FieldKind| {
        def.fields
            .iter()
            .filter(|f| f.kind == kind)
            .find_map(|f| match values.get(&f.key) {
                Some(Value::Text(s)) => uuid::Uuid::parse_str(s).ok(),
                _ => None,
            })
    };
    (
        first(FieldKind::System).map(SystemId),
        first(FieldKind::Site).map(OrgUnitId),
    )
}
