//! What a step found and what became of it: plain data, shared by actions, the engine's reports,
//! the renderers and saved previews. Nothing here knows about AWS.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One thing in the account that a step matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Resource {
    /// What it is, for people: `ECS task`, `CloudFormation stack`.
    pub kind: String,
    /// Its unique id: an ARN where there is one, else the service's id (`eni-0abc...`).
    pub id: String,
    /// Its name (or the id again, for things that have no name).
    pub name: String,
    /// Why the step's selector matched it, e.g. `name matches "aws-serverless-repository-*"`.
    pub matched_because: String,
    /// When it was created, where the service says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    /// Its tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Facts an action needs later (the cluster of a task, the status of an interface...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl Resource {
    /// A resource with no creation time, tags or attributes yet.
    pub fn new(
        kind: impl Into<String>,
        id: impl Into<String>,
        name: impl Into<String>,
        matched_because: impl Into<String>,
    ) -> Resource {
        Resource {
            kind: kind.into(),
            id: id.into(),
            name: name.into(),
            matched_because: matched_because.into(),
            created: None,
            tags: BTreeMap::new(),
            attributes: BTreeMap::new(),
        }
    }

    /// An attribute set by the action that found it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// Sets an attribute (builder style).
    pub fn with_attribute(mut self, key: &str, value: impl Into<String>) -> Resource {
        self.attributes.insert(key.to_string(), value.into());
        self
    }
}

/// What happened to a resource in a step.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// Dry run: this is what would happen.
    Planned,
    /// Done (deleted, stopped, scheduled for deletion...).
    Done,
    /// It was gone already when the step came to it.
    AlreadyGone,
    /// Matched, but protected: left alone.
    Protected,
    /// Matched now, but not in the saved preview being applied: left alone.
    NotPreviewed,
}

/// A resource and what the step did to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceOutcome {
    /// The resource as it was found.
    pub resource: Resource,
    /// Planned, done, already gone or protected.
    pub outcome: OutcomeKind,
    /// What was (or would be) done, in words: `deleted`, `would stop`, `deletion scheduled for
    /// 2026-11-29 (restore with ...)`.
    pub detail: String,
}
