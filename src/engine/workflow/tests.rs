use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn known() -> Known {
    Known {
        roles: ["Agent L1", "Developer", "Change approver"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        groups: ["Service Desk L1", "Change Advisory Board"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

/// A small change-like process: draft → review (approval) → build → closed.
fn sample() -> Definition {
    let toml = r#"
        [[fields]]
        key = "reason"
        label = "Business reason"
        kind = "long_text"

        [[fields]]
        key = "backout"
        label = "Back-out plan"
        kind = "long_text"

        [[fields]]
        key = "risk"
        label = "Risk"
        kind = "select"
        options = ["low", "high"]
        internal = true

        [[states]]
        key = "draft"
        label = "Draft"
        category = "new"
        initial = true

        [[states]]
        key = "review"
        label = "In review"
        category = "waiting"
        [states.approval]
        approvers = { from = "group", group = "Change Advisory Board" }
        rule = { percent = 60 }
        on_approve = "build"
        on_reject = "draft"

        [[states]]
        key = "build"
        label = "In build"
        category = "open"

        [[states]]
        key = "closed"
        label = "Closed"
        category = "closed"

        [[transitions]]
        key = "submit"
        label = "Submit"
        from = ["draft"]
        to = "review"
        roles = ["requester"]
        requires = { fields = ["reason"] }

        [[transitions]]
        key = "finish"
        label = "Finish"
        from = ["build"]
        to = "closed"
        roles = ["Developer"]
        requires = { comment = true, fields = ["backout"] }
        effects = [{ do = "set_group", group = "Service Desk L1" }, { do = "stop_clock", clock = "resolution" }]

        [[transitions]]
        key = "cancel"
        label = "Cancel"
        from = ["*"]
        to = "closed"
        roles = ["requester", "Agent L1"]

        [[screen]]
        state = "*"
        role = "*"
        field = "reason"
        mode = "read"

        [[screen]]
        state = "draft"
        role = "requester"
        field = "reason"
        mode = "required"

        [[screen]]
        state = "build"
        role = "Developer"
        field = "backout"
        mode = "edit"

        [[screen]]
        state = "*"
        role = "*"
        field = "backout"
        mode = "read"
    "#;
    toml::from_str(toml).expect("sample definition parses")
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn the_sample_is_valid_and_round_trips_through_toml() {
    let def = sample();
    assert_eq!(validate(&def, &known()), vec![]);
    let again: Definition = toml::from_str(&toml::to_string(&def).unwrap()).unwrap();
    assert_eq!(again, def);
}

#[test]
fn validation_names_every_offending_element() {
    type Breaker = fn(&mut Definition);
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "no initial",
            |d| d.states[0].initial = false,
            "exactly one state must be initial; none is",
        ),
        (
            "two initial",
            |d| d.states[2].initial = true,
            "exactly one state must be initial; 2 are",
        ),
        (
            "unknown target",
            |d| d.transitions[0].to = "nowhere".into(),
            "transitions.submit.to: unknown state \"nowhere\"",
        ),
        (
            "unknown source",
            |d| d.transitions[1].from = vec!["limbo".into()],
            "transitions.finish.from: unknown state \"limbo\"",
        ),
        (
            "unknown role",
            |d| d.transitions[1].roles = vec!["Wizard".into()],
            "transitions.finish.roles: unknown role \"Wizard\"",
        ),
        (
            "unknown group",
            |d| {
                d.transitions[1].effects = vec![Effect::SetGroup {
                    group: "Nobody".into(),
                }]
            },
            "unknown group \"Nobody\"",
        ),
        (
            "unknown field",
            |d| d.transitions[0].requires.fields = vec!["ghost".into()],
            "transitions.submit.requires.fields: unknown field \"ghost\"",
        ),
        (
            "duplicate key",
            |d| {
                let t = d.transitions[0].clone();
                d.transitions.push(t);
            },
            "transitions.submit: this transition appears twice",
        ),
        (
            "approval target",
            |d| {
                if let Some(a) = d.states[1].approval.as_mut() {
                    a.on_reject = "void".into();
                }
            },
            "states.review.approval: unknown state \"void\"",
        ),
        (
            "screen rule field",
            |d| d.screen[0].field = "nope".into(),
            "unknown field \"nope\"",
        ),
        (
            "no closed state",
            |d| d.states[3].category = Category::Resolved,
            "there must be a state of category closed",
        ),
        (
            "bad percentage",
            |d| {
                if let Some(a) = d.states[1].approval.as_mut() {
                    a.rule = ApprovalRule::Percent(0);
                }
            },
            "a percentage is between 1 and 100",
        ),
        (
            "select without options",
            |d| d.fields[2].options.clear(),
            "fields.risk.options: a select field needs options",
        ),
        (
            "approval state without a way out",
            |d| d.transitions.retain(|t| t.key != "cancel"),
            "states.review.approval: a state with an approval step needs a transition out",
        ),
        (
            "notify an unknown audience",
            |d| {
                d.transitions[0].effects = vec![Effect::Notify {
                    who: "everyone".into(),
                }]
            },
            "transitions.submit.effects: unknown audience \"everyone\"",
        ),
        (
            "support group of a field that is no system",
            |d| {
                d.states[2].on_enter = vec![Effect::SetSupportGroup {
                    field: "reason".into(),
                }]
            },
            "states.build.on_enter: \"reason\" is not a system field",
        ),
        (
            "entering a state names an unknown group",
            |d| {
                d.states[2].on_enter = vec![Effect::SetGroup {
                    group: "Nobody".into(),
                }]
            },
            "states.build.on_enter: unknown group \"Nobody\"",
        ),
    ];
    for (name, breaker, expected) in cases {
        let mut def = sample();
        breaker(&mut def);
        let errors: Vec<String> = validate(&def, &known())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{name}: {errors:#?}"
        );
    }
}

#[test]
fn unreachable_and_stranded_states_are_refused() {
    let mut def = sample();
    def.states.push(State {
        key: "island".into(),
        label: "Island".into(),
        category: Category::Open,
        initial: false,
        on_enter: Vec::new(),
        approval: None,
    });
    let errors: Vec<String> = validate(&def, &known())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        errors.contains(&"states.island: cannot be reached from the initial state".to_owned()),
        "{errors:#?}"
    );

    let mut def = sample();
    // The only ways out of build are removed: tickets there would be stranded.
    def.transitions.retain(|t| t.key == "submit");
    let errors: Vec<String> = validate(&def, &known())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("states.build: no closed state")),
        "{errors:#?}"
    );
}

#[test]
fn field_modes_follow_the_most_specific_rule_and_hide_internal_fields() {
    let def = sample();
    let requester = Acting::new(["requester"], false);
    let developer = Acting::new(["Developer"], true);
    let both = Acting::new(["requester", "Developer"], true);
    let field = |k: &str| def.field(k).unwrap();
    let cases = [
        ("reason", "draft", &requester, Mode::Required),
        ("reason", "build", &requester, Mode::Read),
        ("reason", "draft", &developer, Mode::Read),
        ("backout", "build", &developer, Mode::Edit),
        ("backout", "build", &requester, Mode::Read),
        ("backout", "draft", &developer, Mode::Read),
        ("reason", "draft", &both, Mode::Required),
        ("risk", "draft", &requester, Mode::Hidden),
        ("risk", "draft", &developer, Mode::Edit),
    ];
    for (key, state, acting, expected) in cases {
        assert_eq!(
            def.mode(field(key), state, acting),
            expected,
            "{key} in {state} for {:?}",
            acting.roles
        );
    }
}

#[test]
fn only_the_transitions_a_role_may_take_are_offered() {
    let def = sample();
    let at = |state: &str| Snapshot {
        state: state.into(),
        values: BTreeMap::new(),
    };
    let keys = |acting: &Acting, state: &str| -> Vec<String> {
        def.allowed(&at(state), acting)
            .iter()
            .map(|t| t.key.clone())
            .collect()
    };
    assert_eq!(
        keys(&Acting::new(["requester"], false), "draft"),
        ["submit", "cancel"]
    );
    assert_eq!(
        keys(&Acting::new(["Developer"], true), "draft"),
        Vec::<String>::new()
    );
    assert_eq!(keys(&Acting::new(["Developer"], true), "build"), ["finish"]);
    assert_eq!(
        keys(&Acting::new(["Agent L1"], true), "closed"),
        Vec::<String>::new(),
        "* never loops to itself"
    );
}

#[test]
fn transition_requests_are_checked_with_readable_reasons() {
    let def = sample();
    let requester = Acting::new(["requester"], false);
    let developer = Acting::new(["Developer"], true);
    let draft = Snapshot {
        state: "draft".into(),
        values: BTreeMap::new(),
    };
    let build = Snapshot {
        state: "build".into(),
        values: BTreeMap::new(),
    };
    let none = BTreeMap::new();
    let reasons = |r: Result<Vec<Effect>, Vec<Refusal>>| -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.reason)
            .collect()
    };

    assert_eq!(
        reasons(def.check_transition(&draft, &developer, "finish", &none, "x")),
        ["\"Finish\" cannot be taken from Draft."]
    );
    assert_eq!(
        reasons(def.check_transition(&build, &requester, "finish", &none, "x")),
        ["\"Finish\" is for Developer only."]
    );
    assert_eq!(
        reasons(def.check_transition(&draft, &requester, "nope", &none, "")),
        ["There is no step \"nope\" in this process."]
    );
    assert_eq!(
        reasons(def.check_transition(&build, &developer, "finish", &none, " ")),
        [
            "\"Finish\" needs a comment.",
            "\"Finish\" needs Back-out plan."
        ]
    );
    // A value for a read-only or hidden field is refused, never applied.
    let forged: BTreeMap<String, Value> = [("reason".to_owned(), text("forged"))].into();
    assert_eq!(
        reasons(def.check_transition(&build, &developer, "finish", &forged, "ok")),
        [
            "Business reason cannot be changed here.",
            "\"Finish\" needs Back-out plan."
        ]
    );
    let hidden: BTreeMap<String, Value> = [("risk".to_owned(), text("low"))].into();
    assert_eq!(
        reasons(def.check_transition(&draft, &requester, "submit", &hidden, "")),
        [
            "Risk cannot be changed here.",
            "\"Submit\" needs Business reason."
        ]
    );

    let plan: BTreeMap<String, Value> =
        [("backout".to_owned(), text("restore last night's backup"))].into();
    let effects = def
        .check_transition(&build, &developer, "finish", &plan, "done")
        .unwrap();
    assert_eq!(
        effects,
        vec![
            Effect::SetField {
                field: "backout".into(),
                value: text("restore last night's backup")
            },
            Effect::SetGroup {
                group: "Service Desk L1".into()
            },
            Effect::StopClock {
                clock: "resolution".into()
            },
            Effect::MoveTo {
                state: "closed".into()
            },
        ]
    );
    let reason: BTreeMap<String, Value> = [("reason".to_owned(), text("new law"))].into();
    let effects = def
        .check_transition(&draft, &requester, "submit", &reason, "")
        .unwrap();
    assert_eq!(
        effects.last(),
        Some(&Effect::RequestApprovals {
            state: "review".into()
        })
    );
}

#[test]
fn entering_a_state_runs_its_effects_and_approval_outcomes_lead_on() {
    let mut def = sample();
    def.states[2].on_enter = vec![Effect::Notify {
        who: "group".into(),
    }];
    assert_eq!(validate(&def, &known()), vec![]);
    let move_to = |s: &str| Effect::MoveTo { state: s.into() };
    let cases = [
        (
            "build",
            vec![
                move_to("build"),
                Effect::Notify {
                    who: "group".into(),
                },
            ],
        ),
        (
            "review",
            vec![
                move_to("review"),
                Effect::RequestApprovals {
                    state: "review".into(),
                },
            ],
        ),
        ("closed", vec![move_to("closed")]),
    ];
    for (state, expected) in cases {
        assert_eq!(def.enter(state), expected, "{state}");
    }
    assert_eq!(
        def.after_approval("review", Outcome::Approved),
        Some(def.enter("build"))
    );
    assert_eq!(
        def.after_approval("review", Outcome::Rejected),
        Some(def.enter("draft"))
    );
    assert_eq!(
        def.after_approval("review", Outcome::Nobody),
        Some(def.enter("draft")),
        "nobody to ask: on as a rejection"
    );
    assert_eq!(def.after_approval("build", Outcome::Approved), None);
    // A transition's effects come first, then entering the target.
    let developer = Acting::new(["Developer"], true);
    let build = Snapshot {
        state: "build".into(),
        values: [("backout".to_owned(), text("restore"))].into(),
    };
    let effects = def
        .check_transition(&build, &developer, "finish", &BTreeMap::new(), "done")
        .unwrap();
    assert_eq!(effects.last(), Some(&move_to("closed")));
}

#[test]
fn values_must_fit_their_field() {
    let def = sample();
    let risk = def.field("risk").unwrap();
    assert_eq!(risk.parse(&["high".into()]), Ok(Some(text("high"))));
    assert!(risk.parse(&["extreme".into()]).is_err());
    assert_eq!(risk.parse(&["".into()]), Ok(None));
    let mut number = risk.clone();
    number.kind = FieldKind::Number;
    assert_eq!(number.parse(&["4.5".into()]), Ok(Some(Value::Number(4.5))));
    assert!(number.parse(&["NaN".into()]).is_err());
    assert!(number.parse(&["four".into()]).is_err());
    let mut date = risk.clone();
    date.kind = FieldKind::Date;
    assert!(date.parse(&["2026-02-30".into()]).is_err());
    assert!(date.parse(&["2026-02-28".into()]).is_ok());
    let mut checkbox = risk.clone();
    checkbox.kind = FieldKind::Checkbox;
    checkbox.options.clear();
    assert_eq!(
        checkbox.parse(&["".into(), "on".into()]),
        Ok(Some(Value::Bool(true)))
    );
    assert_eq!(checkbox.parse(&["".into()]), Ok(Some(Value::Bool(false))));
    let mut system = risk.clone();
    system.kind = FieldKind::System;
    assert!(system.parse(&["'; drop table".into()]).is_err());
}

#[test]
fn approval_rounds_decide_as_soon_as_the_outcome_is_certain() {
    use ApprovalRule::*;
    let cases = [
        (All, 3, 3, 0, Tally::Approved),
        (All, 3, 2, 0, Tally::Pending),
        (All, 3, 2, 1, Tally::Rejected),
        (Any, 3, 1, 0, Tally::Approved),
        (Any, 3, 0, 2, Tally::Pending),
        (Any, 3, 0, 3, Tally::Rejected),
        (Percent(60), 5, 3, 1, Tally::Approved),
        (Percent(60), 5, 2, 1, Tally::Pending),
        (Percent(60), 5, 2, 3, Tally::Rejected),
        (Percent(60), 5, 1, 2, Tally::Pending),
        (Percent(50), 4, 2, 2, Tally::Approved),
        (Percent(100), 2, 1, 0, Tally::Pending),
        (All, 0, 0, 0, Tally::Approved),
    ];
    for (rule, asked, yes, no, expected) in cases {
        assert_eq!(
            tally(rule, asked, yes, no),
            expected,
            "{rule:?} {yes}+{no} of {asked}"
        );
    }
}

// Random definitions: states 0..n with random categories, random transitions.
fn arb_definition() -> impl Strategy<Value = Definition> {
    (2usize..7)
        .prop_flat_map(|n| {
            let categories = proptest::collection::vec(0u8..5, n);
            let edges = proptest::collection::vec((0..n, 0..n, any::<bool>()), 0..(n * 3));
            (Just(n), categories, edges)
        })
        .prop_map(|(n, categories, edges)| {
            let category = |c: u8| match c {
                0 => Category::New,
                1 => Category::Open,
                2 => Category::Waiting,
                3 => Category::Resolved,
                _ => Category::Closed,
            };
            let states = (0..n)
                .map(|i| State {
                    key: format!("s{i}"),
                    label: format!("State {i}"),
                    category: category(categories[i]),
                    initial: i == 0,
                    on_enter: Vec::new(),
                    approval: None,
                })
                .collect();
            let transitions = edges
                .into_iter()
                .enumerate()
                .map(|(i, (from, to, wildcard))| Transition {
                    key: format!("t{i}"),
                    label: format!("Go {i}"),
                    from: vec![if wildcard {
                        "*".into()
                    } else {
                        format!("s{from}")
                    }],
                    to: format!("s{to}"),
                    roles: vec!["*".into()],
                    requires: Requirements::default(),
                    effects: Vec::new(),
                })
                .collect();
            Definition {
                fields: Vec::new(),
                states,
                transitions,
                screen: Vec::new(),
                resolution: Default::default(),
            }
        })
}

/// Who may take steps in guarded definitions; `*` is anyone.
const ROLE_POOL: [&str; 5] = ["Agent L1", "Developer", "requester", "approver", "*"];

fn arb_roles() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(ROLE_POOL.to_vec(), 0..=3)
        .prop_map(|r| r.into_iter().map(str::to_owned).collect())
}

// Random definitions with guards: transitions for random roles, some needing a comment,
// states with random approval steps, and sometimes a resolution only the requester closes.
// Well-formed (every key named exists), not necessarily valid: the engine's answers must hold
// for whatever an admin could store.
fn arb_guarded_definition() -> impl Strategy<Value = Definition> {
    (2usize..7)
        .prop_flat_map(|n| {
            let states = proptest::collection::vec(
                (0u8..5, proptest::option::weighted(0.4, (0..n, 0..n))),
                n,
            );
            let edges = proptest::collection::vec(
                (
                    proptest::option::weighted(0.8, 0..n),
                    0..n,
                    arb_roles(),
                    any::<bool>(),
                ),
                0..(n * 3),
            );
            (states, edges, any::<bool>())
        })
        .prop_map(|(states, edges, requester_confirms)| {
            let category = |c: u8| match c {
                0 => Category::New,
                1 => Category::Open,
                2 => Category::Waiting,
                3 => Category::Resolved,
                _ => Category::Closed,
            };
            let states = states
                .into_iter()
                .enumerate()
                .map(|(i, (c, approval))| State {
                    key: format!("s{i}"),
                    label: format!("State {i}"),
                    category: category(c),
                    initial: i == 0,
                    on_enter: Vec::new(),
                    approval: approval.map(|(yes, no)| ApprovalStep {
                        approvers: Approvers::ChangeBoard,
                        rule: ApprovalRule::Any,
                        on_approve: format!("s{yes}"),
                        on_reject: format!("s{no}"),
                    }),
                })
                .collect();
            let transitions = edges
                .into_iter()
                .enumerate()
                .map(|(i, (from, to, roles, comment))| Transition {
                    key: format!("t{i}"),
                    label: format!("Go {i}"),
                    from: vec![from.map_or("*".into(), |f| format!("s{f}"))],
                    to: format!("s{to}"),
                    roles,
                    requires: Requirements {
                        comment,
                        fields: Vec::new(),
                    },
                    effects: Vec::new(),
                })
                .collect();
            Definition {
                fields: Vec::new(),
                states,
                transitions,
                screen: Vec::new(),
                resolution: Resolution {
                    requester_confirms,
                    ..Resolution::default()
                },
            }
        })
}

/// Something a person tries: a step by key (often one that does not exist or does not leave
/// here) as someone holding some roles, with or without a comment; or an approval outcome.
#[derive(Debug, Clone)]
enum Try {
    Step {
        key: String,
        roles: Vec<String>,
        comment: bool,
    },
    Decide(Outcome),
}

fn arb_try() -> impl Strategy<Value = Try> {
    prop_oneof![
        4 => (prop_oneof![(0usize..25).prop_map(|i| format!("t{i}")), Just(String::new()), Just("s0".to_owned())], arb_roles(), any::<bool>())
            .prop_map(|(key, roles, comment)| Try::Step { key, roles, comment }),
        1 => prop_oneof![Just(Outcome::Approved), Just(Outcome::Rejected), Just(Outcome::Nobody)].prop_map(Try::Decide),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_actions_only_ever_follow_the_definition(def in arb_guarded_definition(), tries in proptest::collection::vec(arb_try(), 0..40)) {
        let graph = super::validate::successors(&def);
        let mut state = def.initial_state().map(|s| s.key.clone()).unwrap_or_default();
        for attempt in tries {
            let snapshot = Snapshot { state: state.clone(), values: BTreeMap::new() };
            let effects = match attempt {
                Try::Step { key, roles, comment } => {
                    let acting = Acting::new(roles, false);
                    let offered = def.allowed(&snapshot, &acting).iter().any(|t| t.key == key);
                    let needs_comment = def.transition(&key).is_some_and(|t| t.requires.comment);
                    let comment = if comment { "because" } else { "" };
                    match def.check_transition(&snapshot, &acting, &key, &BTreeMap::new(), comment) {
                        Err(refusals) => {
                            // Refused: a reason a person can read, and nothing to apply.
                            prop_assert!(!refusals.is_empty());
                            prop_assert!(refusals.iter().all(|r| !r.reason.trim().is_empty()));
                            prop_assert!(!offered || (needs_comment && comment.is_empty()), "{key} offered but refused: {refusals:?}");
                            continue;
                        }
                        Ok(effects) => {
                            prop_assert!(offered, "{key} taken from {state} by {:?} though not offered", acting.roles);
                            let t = def.transition(&key).expect("an accepted step exists");
                            prop_assert!(t.leaves(&state));
                            prop_assert!(acting.roles.iter().any(|r| t.roles.contains(r)) || t.roles.iter().any(|r| r == "*"));
                            prop_assert_eq!(&effects, &def.enter(&t.to));
                            effects
                        }
                    }
                }
                Try::Decide(outcome) => match def.after_approval(&state, outcome) {
                    // No approval step here: an outcome changes nothing.
                    None => continue,
                    Some(effects) => {
                        let step = def.state(&state).and_then(|s| s.approval.clone()).expect("approval step");
                        let to = if outcome == Outcome::Approved { step.on_approve } else { step.on_reject };
                        prop_assert_eq!(&effects, &def.enter(&to));
                        effects
                    }
                },
            };
            let moves: Vec<&String> = effects.iter().filter_map(|e| match e { Effect::MoveTo { state } => Some(state), _ => None }).collect();
            prop_assert_eq!(moves.len(), 1, "one move per action: {:?}", effects);
            let to = moves[0].clone();
            prop_assert!(graph.get(state.as_str()).is_some_and(|next| next.contains(to.as_str())), "{state} → {to} is no edge of the definition");
            let approvals = effects.iter().filter(|e| matches!(e, Effect::RequestApprovals { .. })).count();
            prop_assert_eq!(approvals, usize::from(def.state(&to).is_some_and(|s| s.approval.is_some())));
            state = to;
        }
    }
}

proptest! {
    // About one random definition in five is valid; the rest are skipped.
    #![proptest_config(ProptestConfig { cases: 256, max_global_rejects: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn valid_definitions_never_strand_a_ticket(def in arb_definition(), walk in proptest::collection::vec(any::<prop::sample::Index>(), 0..40)) {
        prop_assume!(validate(&def, &Known::default()).is_empty());
        let anyone = Acting::new(["*"], true);
        let states: BTreeSet<&str> = def.states.iter().map(|s| s.key.as_str()).collect();
        let mut snapshot = Snapshot { state: def.initial_state().map(|s| s.key.clone()).unwrap_or_default(), values: BTreeMap::new() };
        for pick in walk {
            // From wherever the walk is, a closed state stays reachable through allowed steps.
            let mut seen = BTreeSet::new();
            let mut queue = vec![snapshot.state.clone()];
            let mut closes = false;
            while let Some(s) = queue.pop() {
                if !seen.insert(s.clone()) { continue; }
                closes |= def.state(&s).is_some_and(|st| st.category == Category::Closed);
                let here = Snapshot { state: s, values: BTreeMap::new() };
                queue.extend(def.allowed(&here, &anyone).iter().map(|t| t.to.clone()));
            }
            prop_assert!(closes, "stranded in {}", snapshot.state);
            let options = def.allowed(&snapshot, &anyone);
            if options.is_empty() { break; }
            let t = options[pick.index(options.len())].key.clone();
            let effects = def.check_transition(&snapshot, &anyone, &t, &BTreeMap::new(), "").map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            for effect in effects {
                if let Effect::MoveTo { state } = effect {
                    prop_assert!(states.contains(state.as_str()), "moved to unknown {state}");
                    snapshot.state = state;
                }
            }
        }
    }

    #[test]
    fn tallies_never_flip_once_decided(asked in 1usize..12, decisions in proptest::collection::vec(any::<bool>(), 0..12), percent in 1u8..=100) {
        let rule = ApprovalRule::Percent(percent);
        let (mut yes, mut no, mut decided) = (0, 0, None);
        for approve in decisions.into_iter().take(asked) {
            if approve { yes += 1 } else { no += 1 }
            let now = tally(rule, asked, yes, no);
            if let Some(earlier) = decided {
                prop_assert_eq!(now, earlier);
            } else if now != Tally::Pending {
                decided = Some(now);
            }
        }
    }
}

#[test]
fn a_process_can_leave_closing_a_resolution_to_the_requester() {
    let def: Definition = toml::from_str(
        r#"
        [[states]]
        key = "new"
        label = "New"
        category = "new"
        initial = true

        [[states]]
        key = "done"
        label = "Resolved"
        category = "resolved"

        [[states]]
        key = "closed"
        label = "Closed"
        category = "closed"

        [[transitions]]
        key = "resolve"
        label = "Resolve"
        from = ["new"]
        to = "done"
        roles = ["Agent L1"]

        [[transitions]]
        key = "close"
        label = "Close"
        from = ["done"]
        to = "closed"
        roles = ["requester", "Agent L1"]

        [[transitions]]
        key = "reopen"
        label = "Reopen"
        from = ["done"]
        to = "new"
        roles = ["requester"]

        [resolution]
        requester_confirms = true
        auto_close_days = 3
        "#,
    )
    .expect("definition parses");
    assert_eq!(def.resolution.reopen_days, 14, "the default window");
    let resolved = Snapshot {
        state: "done".into(),
        values: BTreeMap::new(),
    };
    let agent = Acting::new(["Agent L1"], true);
    let requester = Acting::new(["requester"], false);
    let keys = |acting: &Acting| -> Vec<String> {
        def.allowed(&resolved, acting)
            .iter()
            .map(|t| t.key.clone())
            .collect()
    };
    assert_eq!(keys(&agent), Vec::<String>::new());
    assert_eq!(keys(&requester), vec!["close", "reopen"]);
    let refused = def
        .check_transition(&resolved, &agent, "close", &BTreeMap::new(), "")
        .unwrap_err();
    assert!(refused[0].reason.contains("Only the requester can confirm"));
    assert!(refused[0].reason.contains("after 3 business days"));
    assert!(
        def.check_transition(&resolved, &requester, "close", &BTreeMap::new(), "")
            .is_ok()
    );
    assert!(def.reopens("done", "reopen"));
    assert!(!def.reopens("new", "resolve"));
}

#[test]
fn a_reply_resumes_a_waiting_ticket_reopens_a_done_one_or_asks_for_a_follow_up() {
    let def: Definition = toml::from_str(
        r#"
        [[states]]
        key = "new"
        label = "New"
        category = "new"
        initial = true

        [[states]]
        key = "work"
        label = "In progress"
        category = "open"

        [[states]]
        key = "waiting"
        label = "Waiting for requester"
        category = "waiting"

        [[states]]
        key = "done"
        label = "Resolved"
        category = "resolved"

        [[states]]
        key = "closed"
        label = "Closed"
        category = "closed"

        [[transitions]]
        key = "take"
        label = "Start work"
        from = ["new"]
        to = "work"
        roles = ["Agent L1"]

        [[transitions]]
        key = "ask"
        label = "Ask the requester"
        from = ["work"]
        to = "waiting"
        roles = ["Agent L1"]

        [[transitions]]
        key = "resolve_waiting"
        label = "Resolve"
        from = ["waiting"]
        to = "done"
        roles = ["Agent L1", "requester"]

        [[transitions]]
        key = "answer"
        label = "Answer"
        from = ["waiting"]
        to = "work"
        roles = ["requester", "Agent L1"]

        [[transitions]]
        key = "resolve"
        label = "Resolve"
        from = ["work"]
        to = "done"
        roles = ["Agent L1"]

        [[transitions]]
        key = "close"
        label = "Close"
        from = ["done"]
        to = "closed"
        roles = ["requester", "Agent L1"]

        [[transitions]]
        key = "reconsider"
        label = "Ask again"
        from = ["done"]
        to = "waiting"
        roles = ["Agent L1"]

        [[transitions]]
        key = "reopen"
        label = "It is not solved"
        from = ["done"]
        to = "work"
        roles = ["requester"]
        "#,
    )
    .expect("definition parses");
    let requester = Acting::new(["requester"], false);
    let agent = Acting::new(["Agent L1"], true);
    let watcher = Acting::new(["watcher"], false);
    let cases: [(&str, &Acting, ReplyMeans); 11] = [
        ("new", &requester, ReplyMeans::Comment),
        ("work", &requester, ReplyMeans::Comment),
        ("work", &agent, ReplyMeans::Comment),
        // The first transition to an open or new state, not the first one allowed.
        ("waiting", &requester, ReplyMeans::Resume("answer".into())),
        ("waiting", &agent, ReplyMeans::Resume("answer".into())),
        ("waiting", &watcher, ReplyMeans::Comment),
        ("done", &requester, ReplyMeans::Reopen("reopen".into())),
        // Back to waiting counts as reopening a done ticket.
        ("done", &agent, ReplyMeans::Reopen("reconsider".into())),
        ("done", &watcher, ReplyMeans::FollowUp),
        ("closed", &requester, ReplyMeans::FollowUp),
        ("gone", &requester, ReplyMeans::Comment),
    ];
    for (state, acting, expected) in cases {
        let snapshot = Snapshot {
            state: state.into(),
            values: BTreeMap::new(),
        };
        assert_eq!(
            def.reply_means(&snapshot, acting),
            expected,
            "a reply in {state} by {:?}",
            acting.roles
        );
    }
}
