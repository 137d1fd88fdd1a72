//! Lays out a workflow as a state diagram: states in columns by their distance from the
//! initial state, transitions as arrows. Pure geometry; the web layer draws it as SVG.

use std::collections::{BTreeMap, VecDeque};

use super::Definition;
use super::validate::successors;

pub const BOX_W: i32 = 150;
pub const BOX_H: i32 = 44;
const GAP_X: i32 = 70;
const GAP_Y: i32 = 26;
const MARGIN: i32 = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key: String,
    pub label: String,
    pub category: &'static str,
    pub initial: bool,
    pub approval: bool,
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub label: String,
    pub x1: i32,
    pub y1: i32,
    pub x2: i32,
    pub y2: i32,
    /// Approval outcomes are drawn dashed.
    pub automatic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagram {
    pub width: i32,
    pub height: i32,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

pub fn layout(def: &Definition) -> Diagram {
    let graph = successors(def);
    // Column = shortest distance from the initial state; unreachable states go last.
    let mut column: BTreeMap<&str, i32> = BTreeMap::new();
    let mut queue = VecDeque::new();
    if let Some(initial) = def.initial_state() {
        column.insert(initial.key.as_str(), 0);
        queue.push_back(initial.key.as_str());
    }
    while let Some(s) = queue.pop_front() {
        let next_col = column.get(s).copied().unwrap_or(0) + 1;
        for n in graph.get(s).into_iter().flatten() {
            if !column.contains_key(n) {
                column.insert(n, next_col);
                queue.push_back(n);
            }
        }
    }
    let last = column.values().copied().max().unwrap_or(0) + 1;
    let mut rows: BTreeMap<i32, i32> = BTreeMap::new();
    let mut nodes = Vec::new();
    for s in &def.states {
        let col = column.get(s.key.as_str()).copied().unwrap_or(last);
        let row = rows.entry(col).or_insert(0);
        nodes.push(Node {
            key: s.key.clone(),
            label: s.label.clone(),
            category: s.category.as_str(),
            initial: s.initial,
            approval: s.approval.is_some(),
            x: MARGIN + col * (BOX_W + GAP_X),
            y: MARGIN + *row * (BOX_H + GAP_Y),
        });
        *row += 1;
    }
    let at = |key: &str| nodes.iter().find(|n| n.key == key);
    let mut edges = Vec::new();
    let mut push = |from: &Node, to: &Node, label: String, automatic: bool| {
        let (x1, x2) = if to.x > from.x {
            (from.x + BOX_W, to.x)
        } else if to.x < from.x {
            (from.x, to.x + BOX_W)
        } else {
            (from.x + BOX_W / 2, to.x + BOX_W / 2)
        };
        let (y1, y2) = if to.x == from.x {
            if to.y > from.y {
                (from.y + BOX_H, to.y)
            } else {
                (from.y, to.y + BOX_H)
            }
        } else {
            (from.y + BOX_H / 2, to.y + BOX_H / 2)
        };
        edges.push(Edge {
            label,
            x1,
            y1,
            x2,
            y2,
            automatic,
        });
    };
    for t in &def.transitions {
        for s in &def.states {
            if t.leaves(&s.key)
                && let (Some(from), Some(to)) = (at(&s.key), at(&t.to))
                && from.key != to.key
            {
                push(from, to, t.label.clone(), false);
            }
        }
    }
    for s in &def.states {
        if let Some(step) = &s.approval {
            for (target, label) in [
                (&step.on_approve, "approved"),
                (&step.on_reject, "rejected"),
            ] {
                if let (Some(from), Some(to)) = (at(&s.key), at(target)) {
                    push(from, to, label.to_owned(), true);
                }
            }
        }
    }
    let width = nodes.iter().map(|n| n.x + BOX_W).max().unwrap_or(0) + MARGIN;
    let height = nodes.iter().map(|n| n.y + BOX_H).max().unwrap_or(0) + MARGIN;
    Diagram {
        width,
        height,
        nodes,
        edges,
    }
}
