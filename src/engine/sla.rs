//! SLA clocks as a pure function of a ticket's history. Two clocks, first response and
//! resolution, start when the ticket is filed, pause while it waits (state category
//! `waiting`), resume when it leaves, and stop: first response at the first public reply by
//! someone other than the requester, both when the ticket is resolved or closed; a reopened
//! ticket's resolution clock runs on from where it stopped. A priority change keeps the time
//! already used and measures it against the new priority's targets. Workflow clock effects
//! (`pause_clock`, …) act on the clock they name.
//!
//! The stored projection on the ticket is `project(facts, …)` of its events; recomputing it
//! from the events alone gives the stored values (tested).

use jiff::{SignedDuration, Timestamp};

use super::calendar::Calendar;
use super::workflow::Category;

pub const FIRST_RESPONSE: &str = "first_response";
pub const RESOLUTION: &str = "resolution";

/// What in a ticket's history moves its clocks, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Created {
        at: Timestamp,
        priority: i16,
    },
    Priority {
        at: Timestamp,
        priority: i16,
    },
    Category {
        at: Timestamp,
        category: Category,
    },
    FirstResponse {
        at: Timestamp,
    },
    /// A workflow effect: `action` is start, pause or stop.
    Clock {
        at: Timestamp,
        clock: String,
        action: String,
    },
    Breached {
        at: Timestamp,
        clock: String,
    },
}

/// The targets for one priority.
#[derive(Debug, Clone)]
pub struct Targets {
    pub first_response: Option<SignedDuration>,
    pub resolution: Option<SignedDuration>,
    pub warn_percent: u8,
    pub calendar: Calendar,
}

/// The SLA state stored on a ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    pub first_response_due: Option<Timestamp>,
    pub resolution_due: Option<Timestamp>,
    /// The earliest running due, and when it becomes "due soon".
    pub due: Option<Timestamp>,
    pub warn_at: Option<Timestamp>,
    /// A clock that has not stopped is paused.
    pub paused: bool,
    pub first_response_breached_at: Option<Timestamp>,
    pub resolution_breached_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default)]
struct Clock {
    /// Running since then; `None` while paused or stopped.
    since: Option<Timestamp>,
    used: SignedDuration,
    started: bool,
    stopped: bool,
}

impl Clock {
    fn settle(&mut self, at: Timestamp, calendar: Option<&Calendar>) {
        if let Some(since) = self.since {
            if let Some(calendar) = calendar {
                self.used += calendar.between(since, at);
            }
            self.since = Some(at);
        }
    }

    fn start(&mut self, at: Timestamp) {
        if !self.started || (self.stopped && self.since.is_none()) {
            self.started = true;
            self.stopped = false;
            self.since = Some(at);
        }
    }

    fn pause(&mut self, at: Timestamp, calendar: Option<&Calendar>) {
        self.settle(at, calendar);
        self.since = None;
    }

    fn resume(&mut self, at: Timestamp) {
        if self.started && !self.stopped && self.since.is_none() {
            self.since = Some(at);
        }
    }

    fn stop(&mut self, at: Timestamp, calendar: Option<&Calendar>) {
        self.settle(at, calendar);
        self.since = None;
        self.stopped = true;
    }

    /// When `share` of `target` will have been used, if the clock runs.
    fn due(&self, target: Option<SignedDuration>, calendar: &Calendar) -> Option<Timestamp> {
        let since = self.since?;
        let left = target? - self.used;
        if left <= SignedDuration::ZERO {
            // Used up already (e.g. a higher priority set late): due at the moment it ran on.
            return Some(since);
        }
        calendar.add(since, left)
    }

    fn paused(&self) -> bool {
        self.started && !self.stopped && self.since.is_none()
    }
}

fn percent(target: Option<SignedDuration>, warn_percent: u8) -> Option<SignedDuration> {
    let t = target?;
    Some(SignedDuration::from_secs(
        t.as_secs() * i64::from(warn_percent) / 100,
    ))
}

/// Replays `facts` (oldest first) under the targets `policy` gives each priority.
pub fn project<'p>(facts: &[Fact], policy: impl Fn(i16) -> Option<&'p Targets>) -> Projection {
    let mut first = Clock::default();
    let mut resolution = Clock::default();
    let mut targets: Option<&Targets> = None;
    let mut out = Projection::default();
    for fact in facts {
        let calendar = targets.map(|t| &t.calendar);
        match fact {
            Fact::Created { at, priority } => {
                targets = policy(*priority);
                first.start(*at);
                resolution.start(*at);
            }
            Fact::Priority { at, priority } => {
                first.settle(*at, calendar);
                resolution.settle(*at, calendar);
                targets = policy(*priority);
            }
            Fact::Category { at, category } => match category {
                Category::Waiting => {
                    first.pause(*at, calendar);
                    resolution.pause(*at, calendar);
                }
                Category::Resolved | Category::Closed => {
                    first.stop(*at, calendar);
                    resolution.stop(*at, calendar);
                }
                Category::New | Category::Open => {
                    first.resume(*at);
                    resolution.resume(*at);
                    if resolution.stopped {
                        // Reopened: the resolution clock runs on from where it stopped.
                        resolution.stopped = false;
                        resolution.since = Some(*at);
                    }
                }
            },
            Fact::FirstResponse { at } => first.stop(*at, calendar),
            Fact::Clock { at, clock, action } => {
                let c = match clock.as_str() {
                    FIRST_RESPONSE => &mut first,
                    RESOLUTION => &mut resolution,
                    _ => continue,
                };
                match action.as_str() {
                    "start" => {
                        c.start(*at);
                        c.resume(*at);
                    }
                    "pause" => c.pause(*at, calendar),
                    "stop" => c.stop(*at, calendar),
                    _ => {}
                }
            }
            Fact::Breached { at, clock } => match clock.as_str() {
                FIRST_RESPONSE => {
                    out.first_response_breached_at.get_or_insert(*at);
                }
                RESOLUTION => {
                    out.resolution_breached_at.get_or_insert(*at);
                }
                _ => {}
            },
        }
    }
    out.paused = first.paused() || resolution.paused();
    let Some(t) = targets else {
        return out;
    };
    out.first_response_due = first.due(t.first_response, &t.calendar);
    out.resolution_due = resolution.due(t.resolution, &t.calendar);
    let candidates = [
        (
            out.first_response_due,
            &first,
            percent(t.first_response, t.warn_percent),
        ),
        (
            out.resolution_due,
            &resolution,
            percent(t.resolution, t.warn_percent),
        ),
    ];
    if let Some((due, clock, warn)) = candidates
        .iter()
        .filter_map(|(due, clock, warn)| due.map(|d| (d, *clock, *warn)))
        .min_by_key(|(due, _, _)| *due)
    {
        out.due = Some(due);
        out.warn_at = clock.due(warn, &t.calendar);
    }
    out
}

/// How a due reads against `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    DueSoon,
    Breached,
}

pub fn status(due: Timestamp, warn_at: Option<Timestamp>, now: Timestamp) -> Status {
    if due <= now {
        Status::Breached
    } else if warn_at.is_some_and(|w| w <= now) {
        Status::DueSoon
    } else {
        Status::Running
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::time;
    use jiff::tz::TimeZone;

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn berlin_office() -> Targets {
        Targets {
            first_response: Some(SignedDuration::from_hours(2)),
            resolution: Some(SignedDuration::from_hours(8)),
            warn_percent: 80,
            calendar: Calendar::weekdays(
                TimeZone::get("Europe/Berlin").expect("zone"),
                time(9, 0, 0, 0),
                time(17, 0, 0, 0),
            ),
        }
    }

    #[test]
    fn a_ticket_filed_after_hours_is_due_the_next_business_morning() {
        let t = berlin_office();
        // Friday 2026-11-27 18:00 Berlin (17:00 UTC): nothing counts until Monday 09:00.
        let p = project(
            &[Fact::Created {
                at: at("2026-11-27T17:00:00Z"),
                priority: 2,
            }],
            |_| Some(&t),
        );
        assert_eq!(p.first_response_due, Some(at("2026-11-30T10:00:00Z")));
        assert_eq!(p.resolution_due, Some(at("2026-11-30T16:00:00Z")));
        assert_eq!(p.due, p.first_response_due);
        // 80 % of two hours: 96 minutes.
        assert_eq!(p.warn_at, Some(at("2026-11-30T09:36:00Z")));
    }

    #[test]
    fn waiting_pauses_both_clocks_and_leaving_resumes_them() {
        let t = berlin_office();
        let facts = [
            Fact::Created {
                at: at("2026-11-30T08:00:00Z"), // Monday 09:00 Berlin
                priority: 2,
            },
            Fact::Category {
                at: at("2026-11-30T09:00:00Z"),
                category: Category::Waiting,
            },
        ];
        let paused = project(&facts, |_| Some(&t));
        assert!(paused.paused);
        assert_eq!(paused.due, None);
        let mut resumed = facts.to_vec();
        resumed.push(Fact::Category {
            at: at("2026-12-01T08:00:00Z"), // Tuesday 09:00
            category: Category::Open,
        });
        let p = project(&resumed, |_| Some(&t));
        assert!(!p.paused);
        // One hour used of two: one left from Tuesday 09:00.
        assert_eq!(p.first_response_due, Some(at("2026-12-01T09:00:00Z")));
        assert_eq!(p.resolution_due, Some(at("2026-12-01T15:00:00Z")));
    }

    #[test]
    fn a_first_reply_stops_its_clock_and_resolution_stops_both() {
        let t = berlin_office();
        let mut facts = vec![
            Fact::Created {
                at: at("2026-11-30T08:00:00Z"),
                priority: 2,
            },
            Fact::FirstResponse {
                at: at("2026-11-30T08:30:00Z"),
            },
        ];
        let p = project(&facts, |_| Some(&t));
        assert_eq!(p.first_response_due, None);
        assert_eq!(p.due, Some(at("2026-11-30T16:00:00Z")));
        facts.push(Fact::Category {
            at: at("2026-11-30T10:00:00Z"),
            category: Category::Resolved,
        });
        let p = project(&facts, |_| Some(&t));
        assert_eq!(p.due, None);
        assert!(!p.paused);
        // Reopened the next morning: six hours left of eight.
        facts.push(Fact::Category {
            at: at("2026-12-01T08:00:00Z"),
            category: Category::Open,
        });
        let p = project(&facts, |_| Some(&t));
        assert_eq!(p.resolution_due, Some(at("2026-12-01T14:00:00Z")));
        assert_eq!(p.first_response_due, None);
    }

    #[test]
    fn a_priority_change_keeps_the_time_used_against_new_targets() {
        let low = berlin_office();
        let mut high = berlin_office();
        high.first_response = Some(SignedDuration::from_mins(30));
        high.resolution = Some(SignedDuration::from_hours(4));
        let facts = [
            Fact::Created {
                at: at("2026-11-30T08:00:00Z"),
                priority: 3,
            },
            Fact::Priority {
                at: at("2026-11-30T09:00:00Z"),
                priority: 1,
            },
        ];
        let p = project(&facts, |p| Some(if p == 1 { &high } else { &low }));
        // An hour used of a 30-minute target: breached at the change itself.
        assert_eq!(p.first_response_due, Some(at("2026-11-30T09:00:00Z")));
        assert_eq!(p.resolution_due, Some(at("2026-11-30T12:00:00Z")));
    }

    #[test]
    fn without_a_policy_nothing_is_due() {
        let p = project(
            &[Fact::Created {
                at: at("2026-11-30T08:00:00Z"),
                priority: 4,
            }],
            |_| None,
        );
        assert_eq!(p, Projection::default());
    }

    /// What can happen to a ticket, for the property test.
    #[derive(Debug, Clone)]
    enum Step {
        Wait,
        Work,
        Resolve,
        Reply,
        Priority(i16),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = (i64, Step)> {
        use proptest::prelude::*;
        (
            1i64..600,
            prop_oneof![
                Just(Step::Wait),
                Just(Step::Work),
                Just(Step::Resolve),
                Just(Step::Reply),
                (1i16..=4).prop_map(Step::Priority),
            ],
        )
    }

    proptest::proptest! {
        /// The replay's dues equal a minute-by-minute simulation of the clocks over a
        /// calendar with nights and weekends.
        #[test]
        fn dues_match_a_minute_by_minute_simulation(
            steps in proptest::collection::vec(step(), 0..8)
        ) {
            let calendar = Calendar::weekdays(TimeZone::UTC, time(9, 0, 0, 0), time(17, 0, 0, 0));
            let targets: Vec<Targets> = (1..=4)
                .map(|p| Targets {
                    first_response: Some(SignedDuration::from_mins(30 * p)),
                    resolution: Some(SignedDuration::from_mins(120 * p)),
                    warn_percent: 50,
                    calendar: calendar.clone(),
                })
                .collect();
            let policy = |p: i16| targets.get(usize::try_from(p - 1).ok()?);
            // Friday 2026-11-27 08:00 UTC: the run crosses a weekend.
            let start = at("2026-11-27T08:00:00Z");
            let minute = |m: i64| start + SignedDuration::from_mins(m);
            let mut facts = vec![Fact::Created { at: start, priority: 3 }];
            let mut t = 0;
            for (gap, step) in &steps {
                t += gap;
                let at = minute(t);
                facts.push(match step {
                    Step::Wait => Fact::Category { at, category: Category::Waiting },
                    Step::Work => Fact::Category { at, category: Category::Open },
                    Step::Resolve => Fact::Category { at, category: Category::Resolved },
                    Step::Reply => Fact::FirstResponse { at },
                    Step::Priority(p) => Fact::Priority { at, priority: *p },
                });
            }
            let got = project(&facts, policy);

            // The model: (running, stopped, used minutes) per clock, stepped a minute at a time.
            let mut clocks = [(true, false, 0i64); 2];
            let mut priority = 3i64;
            let mut facts_at = facts.iter().skip(1).peekable();
            let mut m = 0;
            let last = t;
            let mut dues: [Option<i64>; 2] = [None; 2];
            loop {
                while let Some(f) = facts_at.next_if(|f| fact_at(f) == minute(m)) {
                    match f {
                        Fact::Category { category: Category::Waiting, .. } => {
                            for c in &mut clocks { if !c.1 { c.0 = false; } }
                        }
                        Fact::Category { category: Category::Open, .. } => {
                            if !clocks[0].1 { clocks[0].0 = true; }
                            clocks[1].0 = true;
                            clocks[1].1 = false;
                        }
                        Fact::Category { .. } => {
                            for c in &mut clocks { c.0 = false; c.1 = true; }
                        }
                        Fact::FirstResponse { .. } => { clocks[0].0 = false; clocks[0].1 = true; }
                        Fact::Priority { priority: p, .. } => priority = i64::from(*p),
                        _ => {}
                    }
                }
                if m >= last {
                    let target = [30 * priority, 120 * priority];
                    for (i, c) in clocks.iter().enumerate() {
                        if c.0 && dues[i].is_none() && c.2 >= target[i] {
                            dues[i] = Some(m);
                        }
                    }
                    let pending = clocks.iter().enumerate().any(|(i, c)| c.0 && dues[i].is_none());
                    if !pending || m > last + 60 * 24 * 10 {
                        break;
                    }
                }
                for c in &mut clocks {
                    if c.0 && calendar.is_open(minute(m)) {
                        c.2 += 1;
                    }
                }
                m += 1;
            }
            let target = [30 * priority, 120 * priority];
            for (i, due) in [got.first_response_due, got.resolution_due].into_iter().enumerate() {
                let (running, _, used_at_last) = clocks[i];
                if !running {
                    proptest::prop_assert_eq!(due, None);
                } else if dues[i] == Some(last) && used_at_last >= target[i] {
                    // Used up before the last change: due at or before it.
                    proptest::prop_assert!(due.is_some_and(|d| d <= minute(last)));
                } else {
                    proptest::prop_assert_eq!(due, dues[i].map(minute), "clock {}", i);
                }
            }
            let paused = clocks.iter().any(|c| !c.0 && !c.1);
            proptest::prop_assert_eq!(got.paused, paused);
        }
    }

    fn fact_at(f: &Fact) -> Timestamp {
        match f {
            Fact::Created { at, .. }
            | Fact::Priority { at, .. }
            | Fact::Category { at, .. }
            | Fact::FirstResponse { at }
            | Fact::Clock { at, .. }
            | Fact::Breached { at, .. } => *at,
        }
    }

    #[test]
    fn statuses() {
        let now = at("2026-11-30T12:00:00Z");
        assert_eq!(
            status(at("2026-11-30T11:00:00Z"), None, now),
            Status::Breached
        );
        assert_eq!(
            status(
                at("2026-11-30T13:00:00Z"),
                Some(at("2026-11-30T11:30:00Z")),
                now
            ),
            Status::DueSoon
        );
        assert_eq!(
            status(
                at("2026-11-30T13:00:00Z"),
                Some(at("2026-11-30T12:30:00Z")),
                now
            ),
            Status::Running
        );
    }
}
