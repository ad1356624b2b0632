//! Each account's clients, region by region, behind its guard.
//!
//! Per account, before anything else is called in it: the regions named are checked against the
//! plan's `[guard] regions` (no call needed), then STS GetCallerIdentity (one call, read-only)
//! must name exactly the account asked for, when a role is assumed, and an account the plan's
//! `[guard] accounts` allows. Only then are its regions listed (`--all-regions`) and its clients
//! built. An account that fails is refused with the reason; the others go on. The checks
//! themselves, shared with `teardown run`, are [`crate::guard`]'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_sdk_sts::config::SharedCredentialsProvider;

use crate::aws::{AuditLog, Aws, AwsError, AwsOptions, CallLimits, CallTimeouts, Mode, SetupError};
use crate::guard;
use crate::plan::{Guard, Plan};
use crate::settings::AwsArgs;

use super::accounts::{RoleTemplate, SESSION_NAME};
use super::{AccountClients, RefusedAccount, RegionClients};

/// Which regions to sweep in each account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Regions {
    /// The region of the environment or profile, like the AWS CLI.
    Environment,
    /// These regions (`--region`, repeated).
    Listed(Vec<String>),
    /// The regions enabled for the account (`--all-regions`), as EC2 DescribeRegions lists them,
    /// less those the plan's `[guard] regions` leaves out.
    AllEnabled,
}

/// Whose credentials to sweep with.
#[derive(Clone, Debug)]
pub enum Accounts {
    /// The environment's credentials: one account, whichever they are for.
    Environment,
    /// This role, assumed in each of these accounts.
    AssumeRole {
        /// The role, `{account}` standing for the account id.
        role: RoleTemplate,
        /// The accounts, in order.
        accounts: Vec<String>,
    },
}

/// Where each account's runs (audit log, run locks) are kept.
#[derive(Clone, Debug)]
pub struct RunsDirs {
    /// `--runs-dir` (or its default).
    pub root: PathBuf,
    /// True with `--accounts`: each account has a directory of its own under the root, named by
    /// its id, so that one account's audit log holds only the calls made in it.
    pub per_account: bool,
}

impl RunsDirs {
    /// The directory of `account`'s runs.
    pub fn of(&self, account: &str) -> PathBuf {
        if self.per_account {
            self.root.join(account)
        } else {
            self.root.clone()
        }
    }
}

/// The accounts connected, those refused, and each connected account's audit log (with
/// `--apply`).
pub struct Connected {
    /// The accounts whose guard passed, with their clients.
    pub accounts: Vec<AccountClients>,
    /// The accounts refused, and why.
    pub refused: Vec<RefusedAccount>,
    /// The audit log of each account that may be changed, in the order of `accounts`.
    pub audits: Vec<AuditLog>,
}

/// Connects to every account: `Err` only when the environment's own credentials (no
/// `--accounts`) are refused, since then nothing at all can be swept.
pub async fn connect(
    plan: &Plan,
    accounts: &Accounts,
    regions: &Regions,
    audit: Option<(&RunsDirs, &str)>,
    call_limits: CallLimits,
    timeouts: CallTimeouts,
    aws: &AwsArgs,
) -> Result<Connected, String> {
    let guard = &plan.guard;
    let options = aws.options(None);
    // Every client and credentials provider built from this configuration (the assumed roles'
    // too) gets the timeouts: no call of a sweep can hang.
    let mut base = crate::aws::config_loader(&options)
        .await
        .map_err(|e| e.to_string())?
        .timeout_config(timeouts.config())
        .load()
        .await;
    // The calls made before the regions' clients are built (STS, EC2 DescribeRegions) need a
    // region: without one in the environment or profile, the first region named serves.
    if let (None, Regions::Listed(listed)) = (base.region(), regions) {
        base = base
            .to_builder()
            .region(Region::new(listed[0].clone()))
            .build();
    }
    if base.region().is_none() {
        return Err(SetupError::NoRegion {
            profile: options.profile.clone(),
        }
        .to_string());
    }
    let mut connected = Connected {
        accounts: Vec::new(),
        refused: Vec::new(),
        audits: Vec::new(),
    };
    match accounts {
        Accounts::Environment => {
            let audit = audit.map(|(dirs, run_id)| (dirs.clone(), run_id.to_string()));
            let (clients, audit) =
                connect_account(guard, &base, None, regions, audit, call_limits).await?;
            connected.accounts.push(clients);
            connected.audits.extend(audit);
        }
        Accounts::AssumeRole { role, accounts } => {
            // Accounts connect side by side (each is a few calls: AssumeRole, GetCallerIdentity,
            // DescribeRegions), a bounded number at once; the results keep the accounts' order.
            let permits = Arc::new(tokio::sync::Semaphore::new(ACCOUNTS_AT_ONCE));
            let mut connecting = tokio::task::JoinSet::new();
            for (index, account) in accounts.iter().enumerate() {
                let (permits, base, guard, regions) = (
                    permits.clone(),
                    base.clone(),
                    guard.clone(),
                    regions.clone(),
                );
                let (role, account) = (role.for_account(account), account.clone());
                let audit = audit.map(|(dirs, run_id)| (dirs.clone(), run_id.to_string()));
                connecting.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let provider = AssumeRoleProvider::builder(role)
                        .session_name(SESSION_NAME)
                        .configure(&base)
                        .build()
                        .await;
                    let config = base
                        .to_builder()
                        .credentials_provider(SharedCredentialsProvider::new(provider))
                        .build();
                    let result = connect_account(
                        &guard,
                        &config,
                        Some(&account),
                        &regions,
                        audit,
                        call_limits,
                    )
                    .await;
                    (index, account, result)
                });
            }
            let mut done = Vec::new();
            while let Some(joined) = connecting.join_next().await {
                match joined {
                    Ok(result) => done.push(result),
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
            done.sort_by_key(|(index, _, _)| *index);
            for (_, account, result) in done {
                match result {
                    Ok((clients, audit)) => {
                        connected.accounts.push(clients);
                        connected.audits.extend(audit);
                    }
                    Err(reason) => connected.refused.push(RefusedAccount { account, reason }),
                }
            }
        }
    }
    Ok(connected)
}

/// How many accounts connect at once.
const ACCOUNTS_AT_ONCE: usize = 8;

/// One account's clients, its guard checked first (see the module's documentation).
async fn connect_account(
    guard: &Guard,
    config: &SdkConfig,
    expected: Option<&str>,
    regions: &Regions,
    audit: Option<(RunsDirs, String)>,
    call_limits: CallLimits,
) -> Result<(AccountClients, Option<AuditLog>), String> {
    let home = Aws::from_sdk_config(config, Mode::DryRun, AwsOptions::default())
        .map_err(|e| e.to_string())?;
    let named = match regions {
        Regions::Environment => vec![home.region.clone()],
        Regions::Listed(listed) => listed.clone(),
        Regions::AllEnabled => Vec::new(),
    };
    for region in &named {
        guard::region_allowed(guard, region)?;
    }
    let account = guard::check_identity(guard, &home, expected).await?;
    let regions = match regions {
        Regions::AllEnabled => {
            let enabled = enabled_regions(&home)
                .await
                .map_err(|e| format!("cannot list the account's enabled regions ({e})"))?;
            guard::allowed_regions(guard, &enabled)?
        }
        _ => named,
    };
    let audit = match audit {
        Some((dirs, run_id)) => Some(open_audit(&dirs.of(&account), &run_id)?),
        None => None,
    };
    let mut clients = Vec::new();
    for region in regions {
        let config = config.to_builder().region(Region::new(region)).build();
        let build = |mode, audit: Option<&AuditLog>| {
            Aws::from_sdk_config(
                &config,
                mode,
                AwsOptions {
                    audit: audit.cloned(),
                    call_limits,
                    ..AwsOptions::default()
                },
            )
            .map(Arc::new)
            .map_err(|e| e.to_string())
        };
        clients.push(RegionClients {
            read: build(Mode::DryRun, None)?,
            write: match &audit {
                Some(audit) => Some(build(Mode::Apply, Some(audit))?),
                None => None,
            },
        });
    }
    Ok((
        AccountClients {
            account,
            regions: clients,
        },
        audit,
    ))
}

/// The audit log of one sweep in one account's runs directory.
fn open_audit(dir: &Path, run_id: &str) -> Result<AuditLog, String> {
    let path = dir.join(run_id).join("audit.jsonl");
    AuditLog::open(&path, run_id).map_err(|e| {
        format!(
            "cannot create the audit log {}: {e}; pass --runs-dir to put it elsewhere",
            path.display()
        )
    })
}

/// The regions enabled for the account (EC2 DescribeRegions without AllRegions lists only those;
/// a region that says it is not opted in is left out all the same), sorted.
async fn enabled_regions(aws: &Aws) -> Result<Vec<String>, AwsError> {
    let out = aws
        .ec2
        .describe_regions()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("EC2.DescribeRegions", e))?;
    let mut regions: Vec<String> = out
        .regions()
        .iter()
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    regions.sort();
    regions.dedup();
    Ok(regions)
}
