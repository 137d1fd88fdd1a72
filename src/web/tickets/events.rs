//! How the timeline tells each ticket event, the conversation's own events included.

use crate::core::markdown::SafeHtml;
use crate::tickets::attachments::human_size;
use crate::tickets::{EventData, triage};

pub(super) fn describe(data: EventData) -> (String, Option<SafeHtml>) {
    match data {
        EventData::Created { process, .. } if process.is_empty() => {
            ("filed this request".into(), None)
        }
        EventData::Created { process, state, .. } => {
            (format!("filed this {process} ({state})"), None)
        }
        EventData::Comment {
            body_html, public, ..
        } => (
            if public {
                "commented"
            } else {
                "wrote an internal note"
            }
            .into(),
            Some(SafeHtml::from_stored(body_html)),
        ),
        EventData::FieldChanged {
            label, old, new, ..
        } => (
            match (old, new) {
                (None, Some(n)) => format!("set {label} to “{n}”"),
                (Some(o), Some(n)) => format!("changed {label} from “{o}” to “{n}”"),
                (Some(o), None) => format!("cleared {label} (was “{o}”)"),
                (None, None) => format!("touched {label}"),
            },
            None,
        ),
        EventData::Transition {
            label, from, to, ..
        } if label.is_empty() => (format!("moved it from {from} to {to}"), None),
        EventData::Transition {
            label, from, to, ..
        } => (format!("took “{label}”: {from} → {to}"), None),
        EventData::GroupAssigned { group } => (format!("assigned it to {group}"), None),
        EventData::Clock { action, clock } => (format!("clock {clock}: {action}"), None),
        EventData::StateMapped {
            from, to, version, ..
        } => (
            format!("moved it from removed state {from} to {to} (process version {version})"),
            None,
        ),
        EventData::ApprovalRequested {
            round,
            state,
            approvers,
        } if approvers.is_empty() => (
            format!(
                "asked for approval (round {round}, {state}) but found nobody to ask: set the approvers, then resubmit"
            ),
            None,
        ),
        EventData::ApprovalRequested {
            round,
            state,
            approvers,
        } => (
            format!(
                "asked {} to approve (round {round}, {state})",
                approvers.join(", ")
            ),
            None,
        ),
        EventData::ApprovalDecision {
            round,
            approve,
            comment,
        } => (
            format!(
                "{} (round {round}){}",
                if approve { "approved" } else { "rejected" },
                if comment.is_empty() {
                    String::new()
                } else {
                    format!(": {comment}")
                }
            ),
            None,
        ),
        EventData::ApprovalOutcome { round, approved } => (
            format!(
                "round {round} was {}",
                if approved { "approved" } else { "rejected" }
            ),
            None,
        ),
        EventData::NoApprovers { state, reason } => (
            format!("found nobody to approve at {state}: {reason}"),
            None,
        ),
        EventData::Linked { kind, other } => (format!("linked: {kind} {other}"), None),
        EventData::Assigned { assignee, group } => (
            match (assignee, group) {
                (Some(a), Some(g)) => format!("assigned it to {a} ({g})"),
                (Some(a), None) => format!("assigned it to {a}"),
                (None, Some(g)) => format!("assigned it to {g}, nobody in particular"),
                (None, None) => "unassigned it".into(),
            },
            None,
        ),
        EventData::PriorityChanged {
            from,
            to,
            impact,
            urgency,
        } => (
            match (impact, urgency) {
                (Some(i), Some(u)) => format!(
                    "set impact {} and urgency {}: priority {} (was {})",
                    triage::level_name(i),
                    triage::level_name(u),
                    triage::priority_name(to),
                    triage::priority_name(from)
                ),
                _ => format!(
                    "changed the priority from {} to {}",
                    triage::priority_name(from),
                    triage::priority_name(to)
                ),
            },
            None,
        ),
        EventData::Escalated { from, to, reason } => (
            format!(
                "escalated it{} to {to}: {reason}",
                from.map(|f| format!(" from {f}")).unwrap_or_default()
            ),
            None,
        ),
        EventData::SlaBreached { clock } => (
            format!(
                "SLA breached: {}",
                if clock == crate::engine::sla::FIRST_RESPONSE {
                    "first response"
                } else {
                    "resolution"
                }
            ),
            None,
        ),
        data @ (EventData::AttachmentAdded { .. }
        | EventData::WatcherAdded { .. }
        | EventData::WatcherRemoved { .. }) => (describe_conversation(data), None),
        EventData::Merged { other, into: true } => (format!("merged this into {other}"), None),
        EventData::Merged { other, into: false } => (format!("merged {other} into this"), None),
        EventData::MailReceived { why, .. } => (format!("received by e-mail ({why})"), None),
        EventData::MailBounced {
            recipient,
            status,
            diagnostic,
            permanent,
            ..
        } => (
            format!(
                "mail to {} {}{}{}",
                recipient.as_deref().unwrap_or("a recipient"),
                if permanent {
                    "could not be delivered"
                } else {
                    "is delayed"
                },
                status.map(|s| format!(" ({s})")).unwrap_or_default(),
                diagnostic.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            None,
        ),
    }
}

/// How the timeline tells the conversation's own events.
pub(super) fn describe_conversation(data: EventData) -> String {
    match data {
        EventData::AttachmentAdded {
            filename,
            size,
            internal,
            ..
        } => format!(
            "attached “{filename}” ({}){}",
            human_size(u64::try_from(size).unwrap_or(0)),
            if internal { " for staff only" } else { "" }
        ),
        EventData::WatcherAdded {
            themselves: true, ..
        } => "started watching".into(),
        EventData::WatcherAdded { user, .. } => format!("added {user} as a watcher"),
        EventData::WatcherRemoved {
            themselves: true, ..
        } => "stopped watching".into(),
        EventData::WatcherRemoved { user, .. } => format!("removed {user} from the watchers"),
        _ => "changed the ticket".into(),
    }
}
