//! The validated dependency DAG (petgraph). A [`Dag`] can only be made by [`Dag::build`], which
//! rejects unknown dependencies and cycles, so whatever holds one holds a graph that can run.

use std::collections::HashMap;
use std::fmt::Write as _;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

/// What a node of the DAG must tell about itself.
pub trait DagNode {
    /// Its unique id.
    fn id(&self) -> &str;
    /// The ids it must wait for.
    fn after(&self) -> &[String];
    /// What it does, for pictures (e.g. `ecs.stop-tasks`).
    fn label(&self) -> &str;
}

/// Why a set of nodes is not a valid DAG.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two nodes share an id.
    #[error("step id `{0}` is used twice")]
    Duplicate(String),
    /// A node waits for an id that does not exist.
    #[error("step `{step}` waits for `{missing}`, which is not a step of this plan")]
    UnknownDependency {
        /// The node that names it.
        step: String,
        /// The id that does not exist.
        missing: String,
    },
    /// Some nodes wait for each other. The ids are in order along the edges, the first repeated
    /// at the end: `a -> b -> a`.
    #[error("the steps wait for each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
}

/// A dependency graph with no cycles and no dangling edges. Edges point from a dependency to the
/// step that waits for it.
#[derive(Clone, Debug)]
pub struct Dag<T> {
    graph: DiGraph<T, ()>,
    by_id: HashMap<String, NodeIndex>,
    order: Vec<NodeIndex>,
}

impl<T: DagNode> Dag<T> {
    /// Validates and builds the graph.
    pub fn build(nodes: Vec<T>) -> Result<Dag<T>, GraphError> {
        let mut graph = DiGraph::with_capacity(nodes.len(), nodes.len());
        let mut by_id = HashMap::with_capacity(nodes.len());
        for node in nodes {
            let id = node.id().to_string();
            let index = graph.add_node(node);
            if by_id.insert(id.clone(), index).is_some() {
                return Err(GraphError::Duplicate(id));
            }
        }
        let mut edges = Vec::new();
        for index in graph.node_indices() {
            let node = &graph[index];
            for dependency in node.after() {
                let Some(&from) = by_id.get(dependency) else {
                    return Err(GraphError::UnknownDependency {
                        step: node.id().to_string(),
                        missing: dependency.clone(),
                    });
                };
                edges.push((from, index));
            }
        }
        for (from, to) in edges {
            graph.update_edge(from, to, ());
        }
        let Some(order) = plan_order(&graph) else {
            return Err(GraphError::Cycle(find_cycle(&graph)));
        };
        Ok(Dag {
            graph,
            by_id,
            order,
        })
    }
}

/// A topological order that keeps the plan's own order wherever the edges allow (Kahn's
/// algorithm, always taking the earliest ready node), so that runs and pictures are stable.
/// `None` if there is a cycle.
fn plan_order<T>(graph: &DiGraph<T, ()>) -> Option<Vec<NodeIndex>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut unmet: Vec<usize> = graph
        .node_indices()
        .map(|i| graph.neighbors_directed(i, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<NodeIndex>> = graph
        .node_indices()
        .filter(|i| unmet[i.index()] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(Reverse(index)) = ready.pop() {
        order.push(index);
        for next in graph.neighbors_directed(index, Direction::Outgoing) {
            unmet[next.index()] -= 1;
            if unmet[next.index()] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    (order.len() == graph.node_count()).then_some(order)
}

/// One cycle, as ids along the edges with the first repeated at the end.
fn find_cycle<T: DagNode>(graph: &DiGraph<T, ()>) -> Vec<String> {
    let Some(component) = tarjan_scc(graph)
        .into_iter()
        .find(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
    else {
        return Vec::new();
    };
    // The shortest way from the first node (in plan order) back to itself, by breadth-first
    // search inside the component: a strongly connected component always has one.
    let start = *component.iter().min().expect("a component is never empty");
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    'search: while let Some(current) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = graph
            .neighbors_directed(current, Direction::Outgoing)
            .filter(|t| component.contains(t))
            .collect();
        next.sort();
        for target in next {
            if target == start {
                parent.insert(start, current);
                break 'search;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(target) {
                e.insert(current);
                queue.push_back(target);
            }
        }
    }
    let mut path = vec![start];
    let mut current = parent[&start];
    while current != start {
        path.push(current);
        current = parent[&current];
    }
    path.push(start);
    path.reverse();
    path.into_iter()
        .map(|i| graph[i].id().to_string())
        .collect()
}

impl<T> Dag<T> {
    /// Turns every node into another kind of node, keeping the validated shape.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Dag<U> {
        // Nodes are re-added in index order, so every NodeIndex (and the order) stays valid.
        let (nodes, edges) = self.graph.into_nodes_edges();
        let mut graph = DiGraph::with_capacity(nodes.len(), edges.len());
        for node in nodes {
            graph.add_node(f(node.weight));
        }
        for edge in edges {
            graph.add_edge(edge.source(), edge.target(), ());
        }
        Dag {
            graph,
            by_id: self.by_id,
            order: self.order,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// True for a graph with no nodes.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Nodes in an order where every node comes after what it waits for.
    pub fn in_order(&self) -> impl Iterator<Item = &T> + '_ {
        self.order.iter().map(|&i| &self.graph[i])
    }

    /// The node with this id.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id).map(|&i| &self.graph[i])
    }

    pub(crate) fn index_of(&self, id: &str) -> Option<NodeIndex> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn node(&self, index: NodeIndex) -> &T {
        &self.graph[index]
    }

    pub(crate) fn order(&self) -> &[NodeIndex] {
        &self.order
    }

    pub(crate) fn dependents(&self, index: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.graph.neighbors_directed(index, Direction::Outgoing)
    }

    pub(crate) fn dependency_count(&self, index: NodeIndex) -> usize {
        self.graph
            .neighbors_directed(index, Direction::Incoming)
            .count()
    }

    /// True if `descendant` waits, directly or not, for `ancestor`.
    pub fn depends_on(&self, descendant: &str, ancestor: &str) -> bool {
        let (Some(d), Some(a)) = (self.index_of(descendant), self.index_of(ancestor)) else {
            return false;
        };
        petgraph::algo::has_path_connecting(&self.graph, a, d, None)
    }

    /// Level of each node: 0 for nodes that wait for nothing, else one more than the highest
    /// level among what it waits for. Nodes of a level can run at the same time.
    pub fn levels(&self) -> Vec<Vec<&T>> {
        let mut level = vec![0usize; self.graph.node_count()];
        for &index in &self.order {
            for dependent in self.dependents(index) {
                level[dependent.index()] = level[dependent.index()].max(level[index.index()] + 1);
            }
        }
        let depth = level.iter().copied().max().map_or(0, |m| m + 1);
        let mut levels: Vec<Vec<&T>> = vec![Vec::new(); depth];
        for &index in &self.order {
            levels[level[index.index()]].push(&self.graph[index]);
        }
        levels
    }
}

impl<T: DagNode> Dag<T> {
    /// The DAG as text: one block per level, each step with what it waits for.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (n, level) in self.levels().iter().enumerate() {
            let _ = writeln!(out, "level {n}");
            for node in level {
                let after = if node.after().is_empty() {
                    String::new()
                } else {
                    format!("  (after {})", node.after().join(", "))
                };
                let _ = writeln!(out, "  {}  [{}]{after}", node.id(), node.label());
            }
        }
        out
    }

    /// The DAG in Graphviz's dot language.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph teardown {\n  rankdir=LR;\n  node [shape=box];\n");
        for node in self.in_order() {
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\\n{}\"];",
                node.id(),
                node.id(),
                node.label()
            );
        }
        for edge in self.graph.edge_references() {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                self.graph[edge.source()].id(),
                self.graph[edge.target()].id()
            );
        }
        out.push_str("}\n");
        out
    }

    /// The DAG as a Mermaid flowchart, which Markdown viewers draw.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let safe = |id: &str| id.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        for node in self.in_order() {
            let _ = writeln!(
                out,
                "  {}[\"{}<br/>{}\"]",
                safe(node.id()),
                node.id(),
                node.label()
            );
        }
        for edge in self.graph.edge_references() {
            let _ = writeln!(
                out,
                "  {} --> {}",
                safe(self.graph[edge.source()].id()),
                safe(self.graph[edge.target()].id())
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct N(&'static str, Vec<String>);
    impl DagNode for N {
        fn id(&self) -> &str {
            self.0
        }
        fn after(&self) -> &[String] {
            &self.1
        }
        fn label(&self) -> &str {
            "test"
        }
    }
    fn n(id: &'static str, after: &[&str]) -> N {
        N(id, after.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn levels_follow_the_longest_chain() {
        let dag = Dag::build(vec![n("c", &["a", "b"]), n("a", &[]), n("b", &["a"])]).unwrap();
        let levels: Vec<Vec<&str>> = dag
            .levels()
            .iter()
            .map(|l| l.iter().map(|n| n.id()).collect())
            .collect();
        assert_eq!(levels, vec![vec!["a"], vec!["b"], vec!["c"]]);
        assert!(dag.depends_on("c", "a"));
        assert!(!dag.depends_on("a", "c"));
    }

    #[test]
    fn a_cycle_is_named_in_order() {
        let err = Dag::build(vec![
            n("a", &["c"]),
            n("b", &["a"]),
            n("c", &["b"]),
            n("d", &[]),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            GraphError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        let err = Dag::build(vec![n("a", &["a"])]).unwrap_err();
        assert_eq!(err, GraphError::Cycle(vec!["a".into(), "a".into()]));
    }

    #[test]
    fn unknown_dependency_and_duplicates_are_refused() {
        assert!(matches!(
            Dag::build(vec![n("a", &["zz"])]),
            Err(GraphError::UnknownDependency { .. })
        ));
        assert!(matches!(
            Dag::build(vec![n("a", &[]), n("a", &[])]),
            Err(GraphError::Duplicate(_))
        ));
    }

    #[test]
    fn pictures_name_every_edge() {
        let dag = Dag::build(vec![n("a", &[]), n("b-1", &["a"])]).unwrap();
        assert!(dag.to_dot().contains("\"a\" -> \"b-1\";"));
        assert!(dag.to_mermaid().contains("a --> b_1"));
        assert_eq!(
            dag.to_text(),
            "level 0\n  a  [test]\nlevel 1\n  b-1  [test]  (after a)\n"
        );
    }
}
