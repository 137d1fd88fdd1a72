//! The workflow engine: pure rules over a process definition. Given a definition, a ticket
//! snapshot and who is acting, it says which transitions are open, how each field shows
//! (hidden, read, edit, required), whether a requested change is allowed (with reasons a
//! person can read), what a transition does (effects), how an approval round stands, and
//! what a reply on a ticket means (`reply`).
//! No I/O, no clock: the caller stores and applies.

mod definition;
pub mod diagram;
mod reply;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use definition::*;
pub use reply::ReplyMeans;
pub use validate::{DefinitionError, Known, validate};

/// Relations to a ticket that act as roles in definitions.
pub const RELATIONS: [&str; 5] = [
    "requester",
    "assignee",
    "assignee_group_member",
    "watcher",
    "approver",
];

/// Who is acting on a ticket: the names of the roles they hold in its project, the relations
/// they have to it, and whether they may see internal fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acting {
    pub roles: BTreeSet<String>,
    pub see_internal: bool,
}

impl Acting {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(roles: I, see_internal: bool) -> Self {
        Self {
            roles: roles.into_iter().map(Into::into).collect(),
            see_internal,
        }
    }

    fn holds_any(&self, names: &[String]) -> bool {
        names.iter().any(|n| n == "*" || self.roles.contains(n))
    }
}

/// A ticket as the engine needs it: where it is, and its field values (absent = empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub state: String,
    pub values: BTreeMap<String, Value>,
}

/// Why something is refused, in words, naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The field the reason is about, or `None` for the request as a whole.
    pub field: Option<String>,
    pub reason: String,
}

impl Refusal {
    fn general(reason: impl Into<String>) -> Self {
        Self {
            field: None,
            reason: reason.into(),
        }
    }

    fn on(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            reason: reason.into(),
        }
    }
}

impl Definition {
    pub fn state(&self, key: &str) -> Option<&State> {
        self.states.iter().find(|s| s.key == key)
    }

    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }

    pub fn transition(&self, key: &str) -> Option<&Transition> {
        self.transitions.iter().find(|t| t.key == key)
    }

    /// The state new tickets start in.
    pub fn initial_state(&self) -> Option<&State> {
        self.states.iter().find(|s| s.initial)
    }

    /// How `field` shows in `state` to `acting`. The most specific rule wins (state and role,
    /// then state, then role, then the field's default); over several roles the most open
    /// mode wins. Internal fields are hidden from those who may not see internal data.
    pub fn mode(&self, field: &Field, state: &str, acting: &Acting) -> Mode {
        if field.internal && !acting.see_internal {
            return Mode::Hidden;
        }
        let matches_state = |r: &ScreenRule| r.state == state;
        let any_state = |r: &ScreenRule| r.state == "*";
        let for_role = |r: &ScreenRule| r.role != "*" && acting.roles.contains(&r.role);
        let any_role = |r: &ScreenRule| r.role == "*";
        let rules: Vec<&ScreenRule> = self
            .screen
            .iter()
            .filter(|r| r.field == field.key)
            .collect();
        let tiers: [&dyn Fn(&ScreenRule) -> bool; 4] = [
            &|r| matches_state(r) && for_role(r),
            &|r| matches_state(r) && any_role(r),
            &|r| any_state(r) && for_role(r),
            &|r| any_state(r) && any_role(r),
        ];
        for tier in tiers {
            let modes: Vec<Mode> = rules.iter().filter(|r| tier(r)).map(|r| r.mode).collect();
            if let Some(mode) = modes.into_iter().max() {
                return mode;
            }
        }
        field.default_mode
    }

    /// Every field's mode for `acting` in `state`, in the definition's order.
    pub fn modes(&self, state: &str, acting: &Acting) -> Vec<(&Field, Mode)> {
        self.fields
            .iter()
            .map(|f| (f, self.mode(f, state, acting)))
            .collect()
    }

    /// The transitions `acting` may take from the ticket's state now.
    pub fn allowed(&self, snapshot: &Snapshot, acting: &Acting) -> Vec<&Transition> {
        self.transitions
            .iter()
            .filter(|t| {
                t.leaves(&snapshot.state)
                    && acting.holds_any(&t.roles)
                    && self.awaits_requester(snapshot, acting, t).is_none()
            })
            .collect()
    }

    /// Why a transition must wait for the requester: the process lets only the requester
    /// close a resolved ticket.
    fn awaits_requester(
        &self,
        snapshot: &Snapshot,
        acting: &Acting,
        t: &Transition,
    ) -> Option<String> {
        let category = |key: &str| self.state(key).map(|s| s.category);
        let closes_resolved = category(&snapshot.state) == Some(Category::Resolved)
            && category(&t.to) == Some(Category::Closed);
        (self.resolution.requester_confirms
            && closes_resolved
            && !acting.roles.contains("requester"))
        .then(|| {
            let auto = match self.resolution.auto_close_days {
                Some(days) => format!(" It closes by itself after {days} business days."),
                None => String::new(),
            };
            format!("Only the requester can confirm this resolution.{auto}")
        })
    }

    /// The transition's target category when it reopens a resolved or closed ticket.
    pub fn reopens(&self, from: &str, transition: &str) -> bool {
        let category = |key: &str| self.state(key).map(|s| s.category);
        let done = |c: Option<Category>| matches!(c, Some(Category::Resolved | Category::Closed));
        self.transition(transition)
            .is_some_and(|t| done(category(from)) && !done(category(&t.to)))
    }

    /// Checks a transition request: the transition exists, leaves the current state, the
    /// actor may take it, and what it requires is given. `input` are the values sent with it
    /// (only fields the actor may edit in the current state). Returns the effects to apply:
    /// the field changes first, then the transition's own effects, then entering the target
    /// state (approvals).
    pub fn check_transition(
        &self,
        snapshot: &Snapshot,
        acting: &Acting,
        transition: &str,
        input: &BTreeMap<String, Value>,
        comment: &str,
    ) -> Result<Vec<Effect>, Vec<Refusal>> {
        let Some(t) = self.transition(transition) else {
            return Err(vec![Refusal::general(format!(
                "There is no step {transition:?} in this process."
            ))]);
        };
        if !t.leaves(&snapshot.state) {
            let here = self
                .state(&snapshot.state)
                .map_or(snapshot.state.as_str(), |s| s.label.as_str());
            return Err(vec![Refusal::general(format!(
                "\"{}\" cannot be taken from {here}.",
                t.label
            ))]);
        }
        if !acting.holds_any(&t.roles) {
            return Err(vec![Refusal::general(format!(
                "\"{}\" is for {} only.",
                t.label,
                t.roles.join(", ")
            ))]);
        }
        if let Some(why) = self.awaits_requester(snapshot, acting, t) {
            return Err(vec![Refusal::general(why)]);
        }
        let mut refusals = self.check_values(&snapshot.state, acting, input);
        if t.requires.comment && comment.trim().is_empty() {
            refusals.push(Refusal::on(
                "comment",
                format!("\"{}\" needs a comment.", t.label),
            ));
        }
        for key in &t.requires.fields {
            let given = input.get(key).or_else(|| snapshot.values.get(key));
            if given.is_none_or(Value::is_empty) {
                let label = self.field(key).map_or(key.as_str(), |f| f.label.as_str());
                refusals.push(Refusal::on(key, format!("\"{}\" needs {label}.", t.label)));
            }
        }
        if !refusals.is_empty() {
            return Err(refusals);
        }
        let mut effects: Vec<Effect> = input
            .iter()
            .filter(|(k, v)| snapshot.values.get(*k) != Some(*v))
            .map(|(k, v)| Effect::SetField {
                field: k.clone(),
                value: v.clone(),
            })
            .collect();
        effects.extend(t.effects.iter().cloned());
        effects.extend(self.enter(&t.to));
        Ok(effects)
    }

    /// What entering `state` does, in order: the move, the state's `on_enter` effects, and a
    /// new approval round when it has an approval step.
    pub fn enter(&self, state: &str) -> Vec<Effect> {
        let mut effects = vec![Effect::MoveTo {
            state: state.to_owned(),
        }];
        if let Some(s) = self.state(state) {
            effects.extend(s.on_enter.iter().cloned());
            if s.approval.is_some() {
                effects.push(Effect::RequestApprovals {
                    state: state.to_owned(),
                });
            }
        }
        effects
    }

    /// Where the approval step of `state` sends the ticket for `outcome`, and what entering
    /// that state does; `None` when `state` has no approval step.
    pub fn after_approval(&self, state: &str, outcome: Outcome) -> Option<Vec<Effect>> {
        let step = self.state(state)?.approval.as_ref()?;
        let to = match outcome {
            Outcome::Approved => &step.on_approve,
            Outcome::Rejected | Outcome::Nobody => &step.on_reject,
        };
        Some(self.enter(to))
    }

    /// Checks field values sent from a form in `state`: a hidden or read-only field sent by
    /// hand is refused (never stored); a required one must not be empty; each value must fit
    /// its field's type.
    pub fn check_values(
        &self,
        state: &str,
        acting: &Acting,
        input: &BTreeMap<String, Value>,
    ) -> Vec<Refusal> {
        let mut refusals = Vec::new();
        for (key, value) in input {
            let Some(field) = self.field(key) else {
                refusals.push(Refusal::on(key, format!("There is no field {key:?} here.")));
                continue;
            };
            match self.mode(field, state, acting) {
                Mode::Hidden | Mode::Read => {
                    refusals.push(Refusal::on(
                        key,
                        format!("{} cannot be changed here.", field.label),
                    ));
                    continue;
                }
                Mode::Edit | Mode::Required => {}
            }
            if let Err(reason) = field.check(value) {
                refusals.push(Refusal::on(key, reason));
            }
        }
        refusals
    }

    /// Required fields (for `acting` in `state`) that are empty after applying `input`.
    pub fn missing_required(
        &self,
        state: &str,
        acting: &Acting,
        snapshot: &Snapshot,
        input: &BTreeMap<String, Value>,
    ) -> Vec<Refusal> {
        self.fields
            .iter()
            .filter(|f| self.mode(f, state, acting) == Mode::Required)
            .filter(|f| {
                input
                    .get(&f.key)
                    .or_else(|| snapshot.values.get(&f.key))
                    .is_none_or(Value::is_empty)
            })
            .map(|f| Refusal::on(&f.key, format!("{} is required.", f.label)))
            .collect()
    }
}

impl Transition {
    /// Whether it can be taken from `state` (`*` means any state but its own target).
    pub fn leaves(&self, state: &str) -> bool {
        self.from
            .iter()
            .any(|f| f == state || (f == "*" && self.to != state))
    }
}

/// How an approval step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    Rejected,
    /// Nobody could be asked: the ticket goes where a rejection sends it.
    Nobody,
}

/// Where an approval round stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Pending,
    Approved,
    Rejected,
}

/// Decides a round from its decisions: `approvals` and `rejections` so far out of `asked`
/// approvers. Rejection comes early, as soon as the rule can no longer be met.
pub fn tally(rule: ApprovalRule, asked: usize, approvals: usize, rejections: usize) -> Tally {
    if asked == 0 {
        return Tally::Approved;
    }
    let needed = match rule {
        ApprovalRule::All => asked,
        ApprovalRule::Any => 1,
        ApprovalRule::Percent(p) => (asked * usize::from(p.clamp(1, 100))).div_ceil(100),
    };
    let undecided = asked.saturating_sub(approvals + rejections);
    if approvals >= needed {
        Tally::Approved
    } else if approvals + undecided < needed {
        Tally::Rejected
    } else {
        Tally::Pending
    }
}
