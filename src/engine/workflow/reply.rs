//! What a reply on a ticket means for its workflow: a reply to a ticket waiting for an answer
//! sends it back to work, a reply to a resolved or closed one reopens it, and one that cannot
//! reopen it asks for a follow-up ticket. The same rule for the requester and for staff: the
//! roles in `Acting` decide which transitions are theirs to take.

use super::{Acting, Category, Definition, Snapshot};

/// What a reply does to a ticket in its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyMeans {
    /// A comment, nothing more.
    Comment,
    /// Take this transition (back to work from a waiting state), the reply as its comment;
    /// when the transition is refused, the reply is a comment.
    Resume(String),
    /// Take this transition (reopening a resolved or closed ticket), the reply as its
    /// comment; when it is refused (e.g. resolved too long ago), a follow-up ticket.
    Reopen(String),
    /// The ticket is done and the replier cannot reopen it: a new ticket that follows it up.
    FollowUp,
}

impl Definition {
    /// What a reply by `acting` means for the ticket in `snapshot`: the first transition they
    /// may take from a waiting state to a new or open one, or from a resolved or closed state
    /// to a new, open or waiting one. A state the definition does not know takes no move.
    pub fn reply_means(&self, snapshot: &Snapshot, acting: &Acting) -> ReplyMeans {
        let Some(category) = self.state(&snapshot.state).map(|s| s.category) else {
            return ReplyMeans::Comment;
        };
        let wanted: &[Category] = match category {
            Category::Waiting => &[Category::Open, Category::New],
            Category::Resolved | Category::Closed => {
                &[Category::Open, Category::New, Category::Waiting]
            }
            Category::New | Category::Open => return ReplyMeans::Comment,
        };
        let done = matches!(category, Category::Resolved | Category::Closed);
        let transition = self
            .allowed(snapshot, acting)
            .into_iter()
            .find(|t| {
                self.state(&t.to)
                    .is_some_and(|s| wanted.contains(&s.category))
            })
            .map(|t| t.key.clone());
        match (transition, done) {
            (Some(key), false) => ReplyMeans::Resume(key),
            (Some(key), true) => ReplyMeans::Reopen(key),
            (None, true) => ReplyMeans::FollowUp,
            (None, false) => ReplyMeans::Comment,
        }
    }
}
