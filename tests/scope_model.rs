//! Random scope trees against a model a reader can check by hand: which scopes a set
//! of cancels and deadlines reaches, and with which cause.

mod util;

use looplab::{Cancel, Handle, HandleKind, Loop, RunMode, Scope};
use proptest::prelude::*;
use std::time::Duration;

/// One scope of a random tree: its parent (an earlier scope), and its deadline as a
/// slot number (each slot used once, so no two deadlines tie).
#[derive(Clone, Debug)]
struct Node {
    parent: Option<usize>,
    deadline: Option<u64>,
}

fn deadline_of(slot: u64) -> Duration {
    Duration::from_millis(20 + 10 * slot)
}

/// What should happen: explicit cancels first, in order (each reaches the part of its
/// subtree not yet cancelled), then deadlines, earliest first (each reaches its subtree
/// the same way).
fn model(nodes: &[Node], cancels: &[usize]) -> Vec<Option<Cancel>> {
    let mut out: Vec<Option<Cancel>> = vec![None; nodes.len()];
    let under = |i: usize, root: usize| {
        let mut at = Some(i);
        while let Some(a) = at {
            if a == root {
                return true;
            }
            at = nodes[a].parent;
        }
        false
    };
    let reach = |root: usize, cause: Cancel, out: &mut Vec<Option<Cancel>>| {
        if out[root].is_some() {
            return;
        }
        for (i, slot) in out.iter_mut().enumerate() {
            if slot.is_none() && under(i, root) {
                *slot = Some(if i == root {
                    cause.clone()
                } else {
                    Cancel::Parent(Box::new(cause.clone()))
                });
            }
        }
    };
    for &c in cancels {
        reach(c, Cancel::Canceled(format!("c{c}")), &mut out);
    }
    let mut by_deadline: Vec<(u64, usize)> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.deadline.map(|d| (d, i)))
        .collect();
    by_deadline.sort();
    for (slot, i) in by_deadline {
        reach(i, Cancel::Deadline(deadline_of(slot)), &mut out);
    }
    out
}

fn tree() -> impl Strategy<Value = (Vec<Node>, Vec<usize>)> {
    (1usize..10).prop_flat_map(|n| {
        let parents: Vec<_> = (0..n)
            .map(|i| {
                if i == 0 {
                    Just(None).boxed()
                } else {
                    proptest::option::of(0..i).boxed()
                }
            })
            .collect();
        let slots = Just((0..n as u64).collect::<Vec<_>>()).prop_shuffle();
        let has_deadline = proptest::collection::vec(any::<bool>(), n);
        let cancels = proptest::collection::vec(0..n, 0..3);
        (parents, slots, has_deadline, cancels).prop_map(|(parents, slots, has, cancels)| {
            let nodes = parents
                .into_iter()
                .zip(slots.into_iter().zip(has))
                .map(|(parent, (slot, has))| Node {
                    parent,
                    deadline: has.then_some(slot),
                })
                .collect();
            (nodes, cancels)
        })
    })
}

/// Build the tree on a loop, each scope holding one timer that would fire far too late;
/// cancel, run until every deadline has passed, and read back each scope's cause.
fn run(lp: &mut Loop, nodes: &[Node], cancels: &[usize]) -> (Vec<Option<Cancel>>, Vec<Handle>) {
    let mut scopes: Vec<Scope> = Vec::new();
    let mut members = Vec::new();
    for n in nodes {
        let s = match n.parent {
            Some(p) => lp.child_scope(scopes[p]).unwrap(),
            None => lp.scope(),
        };
        if let Some(slot) = n.deadline {
            lp.set_deadline(s, deadline_of(slot));
        }
        let t = lp.in_scope(s, |lp| lp.set_timeout(Duration::from_secs(3600), |_, _| {}));
        lp.unref_handle(t);
        members.push(Handle::from(t));
        scopes.push(s);
    }
    for &c in cancels {
        lp.cancel_scope(scopes[c], format!("c{c}"));
    }
    // Deadline timers are unref'd: this one holds the loop past the last of them.
    lp.set_timeout(deadline_of(nodes.len() as u64 + 2), |_, _| {});
    lp.run(RunMode::Default).unwrap();
    let causes = scopes.iter().map(|s| lp.scope_canceled(*s)).collect();
    (causes, members)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every scope gets the model's cause; exactly the members of uncancelled scopes are
    /// left, and no deadline timer outlives its scope's cancel.
    #[test]
    fn scope_trees_follow_the_model((nodes, cancels) in tree()) {
        let want = model(&nodes, &cancels);
        for backend in looplab::Backend::available() {
            let mut lp = util::new_loop(backend);
            let (got, members) = run(&mut lp, &nodes, &cancels);
            prop_assert_eq!(&got, &want, "on {}", backend);
            let left: Vec<Handle> = lp.handles().iter().map(|i| i.handle).collect();
            for (i, m) in members.iter().enumerate() {
                prop_assert_eq!(left.contains(m), want[i].is_none(), "scope {} on {}", i, backend);
            }
            let timers = lp.handles().iter().filter(|i| i.kind == HandleKind::Timer).count();
            prop_assert_eq!(timers, want.iter().filter(|c| c.is_none()).count());
        }
    }
}
