//! The plan's `[guard]`, checked before anything else is called in an account: the region (no call
//! needed), then the account of the credentials (STS GetCallerIdentity, read-only). `run`,
//! `preview`, `resume`, `apply` and every account of a `sweep` pass through here, so the checks
//! and their messages are written once.

use crate::aws::Aws;
use crate::plan::Guard;

/// The guard of a run in one account and region (`aws`'s): the region, then the account, which
/// is returned. A plan without an account guard is warned about, naming the account.
pub async fn check(guard: &Guard, aws: &Aws) -> Result<String, String> {
    region_allowed(guard, &aws.region)?;
    let account = check_identity(guard, aws, None).await?;
    warn_without_account_guard(guard, Some(&account));
    Ok(account)
}

/// Warns, on stderr, when the plan has no `[guard] accounts`: it would run in any account
/// (`account`, when known, is named).
pub fn warn_without_account_guard(guard: &Guard, account: Option<&str>) {
    if !guard.accounts.is_empty() {
        return;
    }
    match account {
        Some(account) => eprintln!("warning: the plan has no account guard ([guard] accounts); it would run in any account, this one is {account}"),
        None => eprintln!("warning: the plan has no account guard ([guard] accounts); it would run in any account"),
    }
}

/// The plan's `[guard] regions`, for one region named.
pub fn region_allowed(guard: &Guard, region: &str) -> Result<(), String> {
    if guard.regions.is_empty() || guard.regions.iter().any(|r| r == region) {
        return Ok(());
    }
    Err(format!(
        "the plan may run only in {} (its [guard] regions), and this is {region}: nothing was done; pass --region or fix the guard",
        guard.regions.join(", ")
    ))
}

/// The account of the credentials (STS GetCallerIdentity, read-only): exactly `expected` when a
/// role was assumed for it, and one the plan's `[guard] accounts` allows.
pub async fn check_identity(
    guard: &Guard,
    aws: &Aws,
    expected: Option<&str>,
) -> Result<String, String> {
    let identity = aws.sts.get_caller_identity().send().await.map_err(|e| {
        let explained = crate::aws::explain("STS.GetCallerIdentity", Some(&aws.endpoint_of("sts")), &e);
        if crate::util::verbose() {
            eprintln!("detail: {}", explained.detail);
        }
        let e = explained.summary;
        match expected {
            Some(account) => format!(
                "cannot assume the role in account {account}, or tell which account it is in ({e}); check that the role exists, trusts these credentials, and that they may call sts:AssumeRole on it: nothing was done in it"
            ),
            None => match &aws.profile {
                Some(profile) => format!("cannot tell which AWS account profile `{profile}` is for: {e} (for an SSO profile: `aws sso login --profile {profile}`): nothing was done"),
                None => format!("cannot tell which AWS account this is: {e}: nothing was done"),
            },
        }
    })?;
    let account = identity.account().unwrap_or_default().to_string();
    if let Some(expected) = expected {
        if account != expected {
            return Err(format!(
                "the role assumed for account {expected} is in account {account} (STS GetCallerIdentity says {}): nothing was done in {expected}; check --assume-role",
                identity.arn().unwrap_or("no ARN")
            ));
        }
    }
    if !guard.accounts.is_empty() && !guard.accounts.contains(&account) {
        return Err(format!(
            "the plan may run only in account {} (its [guard] accounts), and these credentials are for {account}: nothing was done",
            guard.accounts.join(", ")
        ));
    }
    Ok(account)
}

/// The regions of `enabled` the plan's `[guard] regions` allows (all, without one); `Err` when
/// it allows none of them.
pub fn allowed_regions(guard: &Guard, enabled: &[String]) -> Result<Vec<String>, String> {
    let allowed: Vec<String> = enabled
        .iter()
        .filter(|r| guard.regions.is_empty() || guard.regions.contains(r))
        .cloned()
        .collect();
    if allowed.is_empty() {
        return Err(format!(
            "none of the account's enabled regions ({}) is one the plan may run in ({}, its [guard] regions): nothing was done",
            enabled.join(", "),
            guard.regions.join(", ")
        ));
    }
    Ok(allowed)
}
