//! `[lookup]`: variables whose values are read from the account before anything runs, from what
//! AWS itself records about a lab: a stack's outputs, parameters, tags and resources, the secret
//! that a task family's revisions reference, the function that rotates a secret, the stack that
//! owns a resource. This file holds the plain data and its validation; `crate::resolve` asks AWS.
//!
//! ```toml
//! [lookup]
//! cluster        = { from = "stack-output", stack = "{main_stack}", key = "ECSCluster" }
//! rotation_stack = { from = "stack-owning-resource", resource = "{rotation_function}" }
//! ```

use std::collections::{BTreeMap, BTreeSet};

/// A variable's value and where it came from, as the preview shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VarSource {
    /// The value.
    pub value: String,
    /// Where it came from: `--var`, `the plan's [vars]`, `output ECSCluster of stack lab-1`.
    pub source: String,
}

/// One kind of lookup: its `from` word, the keys it takes, and what it reads, for messages.
pub struct LookupKind {
    /// The `from` value.
    pub from: &'static str,
    /// The keys it takes besides `from`, all required, all templates.
    pub keys: &'static [&'static str],
    /// What it gives, in words.
    pub help: &'static str,
    /// The read-only IAM actions it calls, for `teardown permissions`.
    pub permissions: &'static [&'static str],
}

/// Every lookup teardown knows.
pub const LOOKUP_KINDS: &[LookupKind] = &[
    LookupKind {
        from: "stack-output",
        keys: &["stack", "key"],
        help: "the value of output `key` of stack `stack`",
        permissions: &["cloudformation:DescribeStacks"],
    },
    LookupKind {
        from: "stack-parameter",
        keys: &["stack", "key"],
        help: "the value of parameter `key` of stack `stack`",
        permissions: &["cloudformation:DescribeStacks"],
    },
    LookupKind {
        from: "stack-tag",
        keys: &["stack", "key"],
        help: "the value of tag `key` of stack `stack`",
        permissions: &["cloudformation:DescribeStacks"],
    },
    LookupKind {
        from: "stack-resource",
        keys: &["stack", "logical_id"],
        help: "the physical id of resource `logical_id` of stack `stack` (for a task definition: its family)",
        permissions: &["cloudformation:ListStackResources"],
    },
    LookupKind {
        from: "secret-of-task-family",
        keys: &["family"],
        help: "the one existing secret that the active revisions of task family `family` name in secrets[].valueFrom",
        permissions: &[
            "ecs:ListTaskDefinitions",
            "ecs:DescribeTaskDefinition",
            "secretsmanager:DescribeSecret",
        ],
    },
    LookupKind {
        from: "rotation-function-of-secret",
        keys: &["secret"],
        help: "the name of the Lambda function that rotates secret `secret` (its RotationLambdaARN)",
        permissions: &["secretsmanager:DescribeSecret"],
    },
    LookupKind {
        from: "stack-owning-resource",
        keys: &["resource"],
        help: "the name of the one stack that owns the resource whose physical id is `resource`",
        permissions: &[
            "cloudformation:DescribeStackResources",
            "cloudformation:DescribeStacks",
            "cloudformation:ListStackResources",
        ],
    },
];

/// Finds a kind by its `from` word.
pub fn kind(from: &str) -> Option<&'static LookupKind> {
    LOOKUP_KINDS.iter().find(|k| k.from == from)
}

/// One `[lookup]` entry, validated: the variable it fills, its kind, and its keys' templates
/// (still with `{variables}` in them: they are filled as the lookups resolve, in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The variable it fills.
    pub name: String,
    /// Its kind's `from` word.
    pub from: &'static str,
    /// Each key's template.
    pub keys: BTreeMap<String, String>,
    /// The variables (plain or looked up) its templates use.
    pub uses: BTreeSet<String>,
}

impl Lookup {
    /// Where the value comes from, with the templates as given or filled: `output ECSCluster
    /// of stack lab-1`.
    pub fn describe(&self, keys: &BTreeMap<String, String>) -> String {
        let key = |k: &str| keys.get(k).map(String::as_str).unwrap_or("?");
        match self.from {
            "stack-output" => format!("output {} of stack {}", key("key"), key("stack")),
            "stack-parameter" => format!("parameter {} of stack {}", key("key"), key("stack")),
            "stack-tag" => format!("tag {} of stack {}", key("key"), key("stack")),
            "stack-resource" => {
                format!("resource {} of stack {}", key("logical_id"), key("stack"))
            }
            "secret-of-task-family" => {
                format!("the secret that task family {} references", key("family"))
            }
            "rotation-function-of-secret" => {
                format!("the function that rotates secret {}", key("secret"))
            }
            "stack-owning-resource" => format!("the stack that owns {}", key("resource")),
            other => format!("lookup {other}"),
        }
    }
}

/// The value a variable has while a plan is validated and before it is known (a lookup not yet
/// read from the account, or a required variable nobody gave): a name every action accepts, so
/// that the rest of the step is checked, and that says what it stands for. A step whose variables
/// still hold one is never run: the session refuses it before any call (`Plan::missing_for`, and
/// the check that every lookup the selected steps need was read).
pub fn placeholder(name: &str) -> String {
    format!("teardown-unresolved-{}", name.replace('_', "-"))
}

/// The lookups in the order they can be resolved (each after those it uses), or the cycle.
pub fn in_order(lookups: &[Lookup]) -> Result<Vec<&Lookup>, Vec<String>> {
    let by_name: BTreeMap<&str, &Lookup> = lookups.iter().map(|l| (l.name.as_str(), l)).collect();
    let mut order = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut visiting: Vec<&str> = Vec::new();
    fn visit<'a>(
        name: &'a str,
        by_name: &BTreeMap<&str, &'a Lookup>,
        done: &mut BTreeSet<&'a str>,
        visiting: &mut Vec<&'a str>,
        order: &mut Vec<&'a Lookup>,
    ) -> Result<(), Vec<String>> {
        let Some(lookup) = by_name.get(name) else {
            return Ok(()); // a plain variable
        };
        if done.contains(name) {
            return Ok(());
        }
        if let Some(start) = visiting.iter().position(|v| *v == name) {
            let mut cycle: Vec<String> = visiting[start..].iter().map(|s| s.to_string()).collect();
            cycle.push(name.to_string());
            return Err(cycle);
        }
        visiting.push(name);
        for used in &lookup.uses {
            visit(used, by_name, done, visiting, order)?;
        }
        visiting.pop();
        done.insert(name);
        order.push(lookup);
        Ok(())
    }
    for lookup in lookups {
        visit(&lookup.name, &by_name, &mut done, &mut visiting, &mut order)?;
    }
    Ok(order)
}

/// `names` and every lookup they depend on, transitively.
pub fn needed_by(lookups: &[Lookup], names: &BTreeSet<String>) -> BTreeSet<String> {
    let by_name: BTreeMap<&str, &Lookup> = lookups.iter().map(|l| (l.name.as_str(), l)).collect();
    let mut needed = BTreeSet::new();
    let mut queue: Vec<&str> = names.iter().map(String::as_str).collect();
    while let Some(name) = queue.pop() {
        if let Some(lookup) = by_name.get(name) {
            if needed.insert(name.to_string()) {
                queue.extend(lookup.uses.iter().map(String::as_str));
            }
        }
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str, uses: &[&str]) -> Lookup {
        Lookup {
            name: name.into(),
            from: "stack-output",
            keys: BTreeMap::new(),
            uses: uses.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn lookups_resolve_after_what_they_use_and_cycles_are_named() {
        let chain = [
            lookup("rotation_stack", &["rotation_function"]),
            lookup("rotation_function", &["secret"]),
            lookup("secret", &["main_stack"]),
        ];
        let order: Vec<&str> = in_order(&chain)
            .unwrap()
            .into_iter()
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(order, ["secret", "rotation_function", "rotation_stack"]);
        let cycle = in_order(&[lookup("a", &["b"]), lookup("b", &["a"])]).unwrap_err();
        assert_eq!(cycle, ["a", "b", "a"]);
        let needed = needed_by(&chain, &BTreeSet::from(["rotation_stack".to_string()]));
        assert_eq!(needed.len(), 3);
        let needed = needed_by(&chain, &BTreeSet::from(["main_stack".to_string()]));
        assert!(needed.is_empty());
    }

    #[test]
    fn the_placeholder_says_what_it_stands_for_in_a_name_every_service_accepts() {
        let p = placeholder("rotation_function");
        assert_eq!(p, "teardown-unresolved-rotation-function");
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
