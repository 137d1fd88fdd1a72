//! A process definition as data: fields, states, transitions, screen rules. Serialises to
//! JSON (stored per published version) and TOML (kept under version control).

use serde::{Deserialize, Serialize};

/// A whole process: what it asks for and how it moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[serde(default)]
    pub fields: Vec<Field>,
    pub states: Vec<State>,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub screen: Vec<ScreenRule>,
    /// What happens after a ticket is resolved.
    #[serde(default)]
    pub resolution: Resolution,
}

/// Life after resolution: who may close, when it closes by itself, how long it can reopen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resolution {
    /// Only the requester closes a resolved ticket (or the auto-close job).
    pub requester_confirms: bool,
    /// A resolved ticket closes by itself after this many business days.
    pub auto_close_days: Option<u32>,
    /// A resolved or closed ticket can be reopened this many days after its resolution;
    /// later, a follow-up ticket is filed instead.
    pub reopen_days: u32,
}

impl Default for Resolution {
    fn default() -> Self {
        Self {
            requester_confirms: false,
            auto_close_days: None,
            reopen_days: 14,
        }
    }
}

/// Where a state sits in every process's life, for queues, SLA clocks and plain words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    New,
    Open,
    Waiting,
    Resolved,
    Closed,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::New => "new",
            Category::Open => "open",
            Category::Waiting => "waiting",
            Category::Resolved => "resolved",
            Category::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub key: String,
    pub label: String,
    pub category: Category,
    /// Exactly one state is where tickets start.
    #[serde(default, skip_serializing_if = "is_false")]
    pub initial: bool,
    /// What entering this state does, however the ticket gets here (a transition, an
    /// approval outcome): e.g. assign the system's support group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_enter: Vec<Effect>,
    /// An approval step that runs while a ticket is in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalStep>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub key: String,
    pub label: String,
    /// States it leaves from; `*` for any.
    pub from: Vec<String>,
    pub to: String,
    /// Role names or relations (`requester`, `assignee`, …) that may take it; `*` for anyone
    /// who can see the ticket.
    pub roles: Vec<String>,
    #[serde(default)]
    pub requires: Requirements,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    #[serde(default, skip_serializing_if = "is_false")]
    pub comment: bool,
    /// Fields that must have a value once the transition is taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// What taking a transition does besides moving the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// Assign the ticket to a group (by name).
    SetGroup {
        group: String,
    },
    /// Assign the ticket to the support group of the system chosen in `field` (a system
    /// field); without one, the ticket keeps its group.
    SetSupportGroup {
        field: String,
    },
    /// Set a field to a value.
    SetField {
        field: String,
        value: Value,
    },
    /// Named clocks (used by SLAs).
    StartClock {
        clock: String,
    },
    PauseClock {
        clock: String,
    },
    StopClock {
        clock: String,
    },
    /// Tell people of the move this effect belongs to: one of [`AUDIENCES`]. They get the
    /// state-change notice (in the app and by mail, as their preferences say) with those who
    /// get it anyway.
    Notify {
        who: String,
    },
    /// Produced by the engine, not written in definitions: move to a state.
    MoveTo {
        state: String,
    },
    /// Produced by the engine: start an approval round for the state entered.
    RequestApprovals {
        state: String,
    },
}

/// Whom a `notify` effect may name: the ticket's requester, its assignee, the members of its
/// assignee group, its watchers, everyone ever asked to approve it.
pub const AUDIENCES: [&str; 5] = ["requester", "assignee", "group", "watchers", "approvers"];

/// An approval step: who decides, by what rule, and where the ticket goes after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    pub approvers: Approvers,
    pub rule: ApprovalRule,
    pub on_approve: String,
    /// Also where the ticket goes when the step finds nobody to ask (no system owner, no
    /// change board, a group without active members): a round nobody can decide would
    /// hold it forever.
    pub on_reject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum Approvers {
    /// Named people (by e-mail).
    Users { users: Vec<String> },
    /// Every member of a group (by name).
    Group { group: String },
    /// The owner of the ticket's system (field `field`).
    SystemOwner { field: String },
    /// The project's change board group.
    ChangeBoard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalRule {
    All,
    Any,
    /// At least this share of those asked, in percent.
    Percent(u8),
}

/// How a field shows: ordered from most closed to most open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Hidden,
    Read,
    Edit,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenRule {
    /// A state key or `*`.
    pub state: String,
    /// A role name, relation, or `*`.
    pub role: String,
    pub field: String,
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    LongText,
    Number,
    Date,
    DateTime,
    Select,
    MultiSelect,
    User,
    Group,
    System,
    Site,
    Checkbox,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub section: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    /// Never shown to those without `ticket.comment_internal`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    /// The mode where no screen rule says otherwise.
    #[serde(default = "default_mode")]
    pub default_mode: Mode,
}

fn default_mode() -> Mode {
    Mode::Edit
}

/// A field value. References (user, group, system, site) are ids as text, checked by the
/// caller against the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<String>),
}

impl Value {
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Text(s) => s.trim().is_empty(),
            Value::List(l) => l.is_empty(),
            Value::Bool(_) | Value::Number(_) => false,
        }
    }

    /// The value as a person sees it.
    pub fn display(&self) -> String {
        match self {
            Value::Bool(true) => "yes".into(),
            Value::Bool(false) => "no".into(),
            Value::Number(n) => n.to_string(),
            Value::Text(s) => s.clone(),
            Value::List(l) => l.join(", "),
        }
    }
}

impl Field {
    /// Turns what a form sent (all text) into a typed value; `Ok(None)` for empty.
    pub fn parse(&self, raw: &[String]) -> Result<Option<Value>, String> {
        let first = raw.first().map(|s| s.trim()).unwrap_or("");
        let value = match self.kind {
            FieldKind::MultiSelect => {
                let items: Vec<String> = raw
                    .iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if items.is_empty() {
                    return Ok(None);
                }
                Value::List(items)
            }
            // Forms send a hidden empty value before the box, so unticking is seen too.
            FieldKind::Checkbox => Value::Bool(
                raw.iter()
                    .any(|v| matches!(v.trim(), "on" | "true" | "yes" | "1")),
            ),
            _ if first.is_empty() => return Ok(None),
            FieldKind::Number => Value::Number(
                first
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| format!("{} must be a number.", self.label))?,
            ),
            _ => Value::Text(first.to_owned()),
        };
        self.check(&value)?;
        Ok(Some(value))
    }

    /// Whether a value fits the field's type and options.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let label = &self.label;
        match (self.kind, value) {
            (FieldKind::Checkbox, Value::Bool(_)) | (FieldKind::Number, Value::Number(_)) => Ok(()),
            (FieldKind::Text, Value::Text(s)) if s.chars().count() <= 500 => Ok(()),
            (FieldKind::Text, Value::Text(_)) => {
                Err(format!("{label}: use at most 500 characters."))
            }
            (FieldKind::LongText, Value::Text(s)) if s.chars().count() <= 50_000 => Ok(()),
            (FieldKind::LongText, Value::Text(_)) => {
                Err(format!("{label}: use at most 50,000 characters."))
            }
            (FieldKind::Date, Value::Text(s)) => s
                .parse::<jiff::civil::Date>()
                .map(|_| ())
                .map_err(|_| format!("{label}: enter a date like 2026-12-31.")),
            (FieldKind::DateTime, Value::Text(s)) => s
                .parse::<jiff::civil::DateTime>()
                .map(|_| ())
                .map_err(|_| format!("{label}: enter a date and time like 2026-12-31T18:00.")),
            (FieldKind::Select, Value::Text(s)) if self.options.contains(s) => Ok(()),
            (FieldKind::Select, Value::Text(_)) => {
                Err(format!("{label}: choose one of the options."))
            }
            (FieldKind::MultiSelect, Value::List(items))
                if items.iter().all(|i| self.options.contains(i)) =>
            {
                Ok(())
            }
            (FieldKind::MultiSelect, Value::List(_)) => {
                Err(format!("{label}: choose from the options."))
            }
            (
                FieldKind::User | FieldKind::Group | FieldKind::System | FieldKind::Site,
                Value::Text(s),
            ) if uuid::Uuid::parse_str(s).is_ok() => Ok(()),
            _ => Err(format!("{label}: this value does not fit.")),
        }
    }
}
