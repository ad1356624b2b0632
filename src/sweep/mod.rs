//! Sweeps: one plan applied to every lab found in an account (`teardown sweep PLAN`).
//!
//! A plan's `[sweep]` section says how to find labs and how to fill the plan's variables from each:
//!
//! ```toml
//! [sweep]
//! find = { stack = "Lab-*", tags = { Workshop = "secrets" }, older_than = "24h", not_updated_for = "6h" }
//! bind = { main_stack = "{stack.name}", cluster = "{stack.tag.Cluster}" }
//! ```
//!
//! A lab is a CloudFormation stack that `find` matches (name glob and tags; age from its creation
//! time, `not_updated_for` from its last update, else its creation). `bind` gives plan variables a
//! template filled from the lab's stack: `{stack.name}`, `{stack.id}`, `{stack.tag.KEY}`,
//! `{stack.output.KEY}`, `{stack.parameter.KEY}`, `{region}`, `{account}`.
//!
//! A sweep goes in three stages, all read-only but the last:
//! 1. [`Sweep::discover`] ([`Sweep::discover_accounts`] for several accounts): list the stacks
//!    of every region, match them, and keep (with the reason) the labs that are
//!    protected, nested, busy, too young, recently updated, in use (an ECS task of the lab's
//!    cluster started within `not_updated_for`), or whose variables cannot be bound;
//! 2. [`Sweep::preview`] (or `preview_accounts`): every other lab becomes its own copy of the plan's DAG, its step ids
//!    prefixed with the lab (`Lab-a/stop-tasks`); all copies are merged into one DAG that the
//!    engine runs once, in a dry run, under the global parallelism. Labs whose copies would change
//!    the same resource are kept (a lab's teardown must never reach into another lab), and so are
//!    labs whose preview failed;
//! 3. [`Sweep::apply`] (or `apply_accounts`; with `--apply`): the same merged DAG with clients that may delete, each
//!    step restricted to exactly the resources its preview listed (as `teardown apply` does).
//!
//! The discovery and the preview use clients that cannot mutate, whatever the mode. (Assuming a
//! role is the credentials provider's own STS call, outside those clients: it changes nothing in
//! the account.)
//!
//! What keeps each lab's teardown inside that lab: every step's `match` must use a variable that
//! `bind` sets (checked when the plan is read); a value bound from a stack may be neither empty nor
//! a glob; labs whose previews would change the same resource are both kept; and the real run
//! changes nothing its preview did not list.
//!
//! The command is a dry run unless `--apply`; `--apply` takes the plan's guard, the run lock and
//! the confirmation of `teardown run` (`--yes` for unattended sweeps), and writes the audit log.
//! Exit codes: 0 all went well (kept labs included), 1 something failed (a step, a preview, a
//! check, a region, an account refused while others were swept), 2 bad input, 3 refused (with
//! `--accounts`: every account), 130 interrupted. A sweep is not resumed: run it
//! again, every step is idempotent.
//!
//! Regions and accounts: `--region` (repeatable) or `--all-regions` (the account's enabled
//! regions, EC2 DescribeRegions) name the regions; `--assume-role` with `--accounts` sweeps
//! several accounts in the same run, each through the role assumed in it. Every region of every
//! account is a separate set of labs, and all their copies of the plan run in one executor.
//! Each account's guard is checked once, before anything else is called in it: the assumed
//! role's caller identity must be exactly that account, and the plan's `[guard]` must allow it;
//! an account that fails is refused (reported, exit code 1) and nothing in it is touched.
//!
//! One file per concern: `plan.rs` reads the `[sweep]` section, `discover.rs` finds and judges
//! the labs, `run.rs` previews and applies them, `report.rs` tells what happened, `shard.rs`
//! splits labs over runs, `accounts.rs` reads `--accounts` and `--assume-role`, `connect.rs`
//! builds each account's clients behind its guard, and `command.rs` is `teardown sweep` itself.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::Aws;
use crate::outcome::Outcome;

mod accounts;
mod command;
mod connect;
mod discover;
mod report;
mod run;
mod shard;
#[cfg(test)]
mod tests;

pub use crate::plan::sweep::{Find, LoadError, StackFacts, SweepPlan};
pub use accounts::{AccountList, RoleTemplate};
pub use command::{run, SweepArgs};
pub use discover::{Lab, LabStatus};
pub use report::{LabReport, StepReport, SweepReport};
pub use shard::Shard;

// ---- the sweep --------------------------------------------------------------------------------

/// One region's clients: `read` cannot mutate (discovery and previews use it whatever the mode);
/// `write` deletes, and is absent from a dry run.
#[derive(Clone)]
pub struct RegionClients {
    /// Read-only clients ([`Mode::DryRun`](crate::aws::Mode::DryRun)).
    pub read: Arc<Aws>,
    /// Clients that may delete ([`Mode::Apply`](crate::aws::Mode::Apply)); `None` in a dry run.
    pub write: Option<Arc<Aws>>,
}

/// One account's clients, region by region, once its guard passed.
#[derive(Clone)]
pub struct AccountClients {
    /// The account id, as STS GetCallerIdentity gave it through these clients.
    pub account: String,
    /// The clients of each region swept in it, in order.
    pub regions: Vec<RegionClients>,
}

/// An account that was not swept, and why: nothing in it was touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefusedAccount {
    /// The account id asked for.
    pub account: String,
    /// Why it was refused (the role could not be assumed, it answered for another account, the
    /// plan's guard does not allow it...).
    pub reason: String,
}

/// How to sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Only this shard's labs.
    pub shard: Option<Shard>,
    /// Steps running at once, at most, across all labs.
    pub parallelism: usize,
    /// Stop starting new steps at the first failure.
    pub fail_fast: bool,
    /// The time ages are measured against (now, except in tests).
    pub now: DateTime<Utc>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            shard: None,
            parallelism: crate::engine::DEFAULT_PARALLELISM.into(),
            fail_fast: false,
            now: Utc::now(),
        }
    }
}

/// A sweep in progress: the labs found and where each stands.
pub struct Sweep {
    /// The account swept; with several, the first of [`Sweep::accounts`].
    pub account: String,
    /// Every account swept, in order (refused ones left out).
    pub accounts: Vec<String>,
    /// Accounts that were asked for and refused, with the reason.
    pub refused: Vec<RefusedAccount>,
    /// The regions swept (in any account), in order.
    pub regions: Vec<String>,
    /// Every lab found (in this shard), in account, region, then stack order.
    pub labs: Vec<Lab>,
    /// Labs found that belong to other shards.
    pub in_other_shards: usize,
    /// Problems that are not one lab's (a region whose stacks could not be listed).
    pub errors: Vec<String>,
    /// True once a run was cancelled (Ctrl-C, SIGTERM, the caller's token).
    pub interrupted: bool,
    /// True once [`Sweep::apply`] ran.
    pub applied: bool,
    plan_name: String,
    /// When the preview started looking: what it found is handed to the apply's steps for their
    /// first look while it is fresh (see [`crate::actions::HandOver`]).
    previewed_at: Option<tokio::time::Instant>,
}

impl Sweep {
    /// Labs found stale and not run yet.
    pub fn stale(&self) -> impl Iterator<Item = &Lab> {
        self.labs.iter().filter(|l| l.status == LabStatus::NotRun)
    }

    /// How the sweep ended, as the documented exit code: 1 when anything failed (a scheduler
    /// alerts on it), including an account refused while others were swept; 3 when every account
    /// asked for was refused (nothing was done); 130 when interrupted.
    pub fn outcome(&self) -> Outcome {
        if self.interrupted {
            Outcome::Interrupted
        } else if !self.refused.is_empty() && self.accounts.is_empty() {
            Outcome::Refused
        } else if !self.errors.is_empty()
            || !self.refused.is_empty()
            || self.labs.iter().any(|l| l.status == LabStatus::Failed)
        {
            Outcome::StepsFailed
        } else {
            Outcome::Success
        }
    }
}

/// The clients of the lab of `account` in `region`.
fn client_for<'a>(
    accounts: &'a [AccountClients],
    account: &str,
    region: &str,
) -> &'a RegionClients {
    accounts
        .iter()
        .filter(|a| a.account == account)
        .flat_map(|a| &a.regions)
        .find(|c| c.read.region == region)
        .expect("every lab comes from one of the regions swept")
}

/// A one-account sweep's regions as the accounts the sweep works with.
fn one_account(account: &str, regions: &[RegionClients]) -> [AccountClients; 1] {
    [AccountClients {
        account: account.to_string(),
        regions: regions.to_vec(),
    }]
}
