//! Checks a definition before it is saved: one initial state, every state reachable, a closed
//! state reachable from every state, nothing unknown, nothing duplicated. Every problem is
//! reported, each naming the element at fault.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use super::{AUDIENCES, Approvers, Category, Definition, Effect, FieldKind, RELATIONS};

/// Names that exist outside the definition: roles and groups in the database.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub roles: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

/// One problem, with the path of the element at fault (e.g. `transitions.start_build.to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub path: String,
    pub problem: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Every problem of the definition; empty means it may be saved.
pub fn validate(def: &Definition, known: &Known) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let mut err = |path: String, problem: String| errors.push(DefinitionError { path, problem });

    let mut state_keys = BTreeSet::new();
    for s in &def.states {
        if !is_key(&s.key) {
            err(
                format!("states.{}", s.key),
                "a key uses lowercase letters, digits and _".into(),
            );
        }
        if !state_keys.insert(s.key.as_str()) {
            err(
                format!("states.{}", s.key),
                "this state appears twice".into(),
            );
        }
        if s.label.trim().is_empty() {
            err(
                format!("states.{}.label", s.key),
                "a state needs a label".into(),
            );
        }
    }
    match def.states.iter().filter(|s| s.initial).count() {
        1 => {}
        0 => err(
            "states".into(),
            "exactly one state must be initial; none is".into(),
        ),
        n => err(
            "states".into(),
            format!("exactly one state must be initial; {n} are"),
        ),
    }
    if !def.states.iter().any(|s| s.category == Category::Closed) {
        err(
            "states".into(),
            "there must be a state of category closed".into(),
        );
    }

    let mut field_keys = BTreeSet::new();
    for f in &def.fields {
        if !is_key(&f.key) {
            err(
                format!("fields.{}", f.key),
                "a key uses lowercase letters, digits and _".into(),
            );
        }
        if !field_keys.insert(f.key.as_str()) {
            err(
                format!("fields.{}", f.key),
                "this field appears twice".into(),
            );
        }
        let needs_options = matches!(
            f.kind,
            super::FieldKind::Select | super::FieldKind::MultiSelect
        );
        if needs_options && f.options.is_empty() {
            err(
                format!("fields.{}.options", f.key),
                "a select field needs options".into(),
            );
        }
    }

    let role_known = |r: &str| r == "*" || RELATIONS.contains(&r) || known.roles.contains(r);
    let mut transition_keys = BTreeSet::new();
    let mut edges = BTreeSet::new();
    for t in &def.transitions {
        let path = format!("transitions.{}", t.key);
        if !transition_keys.insert(t.key.as_str()) {
            err(path.clone(), "this transition appears twice".into());
        }
        for from in &t.from {
            if from != "*" && !state_keys.contains(from.as_str()) {
                err(format!("{path}.from"), format!("unknown state {from:?}"));
            }
            if !edges.insert((from.clone(), t.to.clone(), t.label.clone())) {
                err(
                    path.clone(),
                    format!(
                        "duplicates another transition from {from:?} to {:?} named {:?}",
                        t.to, t.label
                    ),
                );
            }
        }
        if t.from.is_empty() {
            err(
                format!("{path}.from"),
                "a transition needs at least one state to leave from".into(),
            );
        }
        if !state_keys.contains(t.to.as_str()) {
            err(format!("{path}.to"), format!("unknown state {:?}", t.to));
        }
        if t.roles.is_empty() {
            err(
                format!("{path}.roles"),
                "name who may take it (a role, a relation, or *)".into(),
            );
        }
        for role in &t.roles {
            if !role_known(role) {
                err(format!("{path}.roles"), format!("unknown role {role:?}"));
            }
        }
        for field in &t.requires.fields {
            if !field_keys.contains(field.as_str()) {
                err(
                    format!("{path}.requires.fields"),
                    format!("unknown field {field:?}"),
                );
            }
        }
        for effect in &t.effects {
            if let Some(problem) = effect_problem(def, known, effect) {
                err(format!("{path}.effects"), problem);
            }
        }
    }

    for s in &def.states {
        for effect in &s.on_enter {
            if let Some(problem) = effect_problem(def, known, effect) {
                err(format!("states.{}.on_enter", s.key), problem);
            }
        }
    }

    for s in &def.states {
        let Some(step) = &s.approval else { continue };
        let path = format!("states.{}.approval", s.key);
        for target in [&step.on_approve, &step.on_reject] {
            if !state_keys.contains(target.as_str()) {
                err(path.clone(), format!("unknown state {target:?}"));
            }
        }
        if let super::ApprovalRule::Percent(p) = step.rule
            && !(1..=100).contains(&p)
        {
            err(
                format!("{path}.rule"),
                "a percentage is between 1 and 100".into(),
            );
        }
        match &step.approvers {
            Approvers::Group { group } if !known.groups.contains(group) => {
                err(
                    format!("{path}.approvers"),
                    format!("unknown group {group:?}"),
                );
            }
            Approvers::SystemOwner { field }
                if def.field(field).is_none_or(|f| f.kind != FieldKind::System) =>
            {
                err(
                    format!("{path}.approvers"),
                    format!("{field:?} is not a system field"),
                );
            }
            Approvers::Users { users } if users.is_empty() => {
                err(
                    format!("{path}.approvers"),
                    "name at least one approver".into(),
                );
            }
            _ => {}
        }
    }

    for rule in &def.screen {
        let path = format!("screen.{}.{}.{}", rule.state, rule.role, rule.field);
        if rule.state != "*" && !state_keys.contains(rule.state.as_str()) {
            err(path.clone(), format!("unknown state {:?}", rule.state));
        }
        if !role_known(&rule.role) {
            err(path.clone(), format!("unknown role {:?}", rule.role));
        }
        if !field_keys.contains(rule.field.as_str()) {
            err(path, format!("unknown field {:?}", rule.field));
        }
    }

    // Reachability only makes sense on a well-formed graph.
    if errors.is_empty() {
        let graph = successors(def);
        if let Some(initial) = def.initial_state() {
            let reached = reachable(&graph, [initial.key.as_str()]);
            for s in &def.states {
                if !reached.contains(s.key.as_str()) {
                    errors.push(DefinitionError {
                        path: format!("states.{}", s.key),
                        problem: "cannot be reached from the initial state".into(),
                    });
                }
            }
        }
        for s in &def.states {
            let reached = reachable(&graph, [s.key.as_str()]);
            let closes = reached.iter().any(|k| {
                def.state(k)
                    .is_some_and(|st| st.category == Category::Closed)
            });
            if !closes {
                errors.push(DefinitionError {
                    path: format!("states.{}", s.key),
                    problem: "no closed state can be reached from here: tickets would be stranded"
                        .into(),
                });
            }
        }
    }
    // Checked whatever else is wrong: reachability above only runs on a sound definition.
    for s in &def.states {
        if s.approval.is_some() && !def.transitions.iter().any(|t| t.leaves(&s.key)) {
            errors.push(DefinitionError {
                path: format!("states.{}.approval", s.key),
                problem: "a state with an approval step needs a transition out (e.g. cancel): approvers may never answer".into(),
            });
        }
    }
    errors
}

/// What is wrong with an effect written in a definition, if anything.
fn effect_problem(def: &Definition, known: &Known, effect: &Effect) -> Option<String> {
    match effect {
        Effect::SetGroup { group } if !known.groups.contains(group) => {
            Some(format!("unknown group {group:?}"))
        }
        Effect::SetField { field, value } => match def.field(field) {
            None => Some(format!("unknown field {field:?}")),
            Some(f) => f.check(value).err(),
        },
        Effect::SetSupportGroup { field }
            if def.field(field).is_none_or(|f| f.kind != FieldKind::System) =>
        {
            Some(format!("{field:?} is not a system field"))
        }
        Effect::Notify { who } if !AUDIENCES.contains(&who.as_str()) => Some(format!(
            "unknown audience {who:?}: use one of {}",
            AUDIENCES.join(", ")
        )),
        Effect::MoveTo { .. } | Effect::RequestApprovals { .. } => {
            Some("move_to and request_approvals are added by the engine".into())
        }
        _ => None,
    }
}

fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 50
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// State → states one step away (transitions, and approval outcomes).
pub(super) fn successors(def: &Definition) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = def
        .states
        .iter()
        .map(|s| (s.key.as_str(), BTreeSet::new()))
        .collect();
    for t in &def.transitions {
        for s in &def.states {
            if t.leaves(&s.key)
                && let Some(next) = graph.get_mut(s.key.as_str())
            {
                next.insert(t.to.as_str());
            }
        }
    }
    for s in &def.states {
        if let Some(step) = &s.approval
            && let Some(next) = graph.get_mut(s.key.as_str())
        {
            next.insert(step.on_approve.as_str());
            next.insert(step.on_reject.as_str());
        }
    }
    graph
}

pub(super) fn reachable<'a>(
    graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    start: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut queue: VecDeque<&str> = start.into_iter().collect();
    while let Some(s) = queue.pop_front() {
        if seen.insert(s) {
            queue.extend(graph.get(s).into_iter().flatten().copied());
        }
    }
    seen
}
