//! `--assume-role` and `--accounts`: which accounts a sweep goes through, and the role it assumes
//! in each. Both are read and checked before anything is called, so that a typo is bad input
//! (exit code 2), never a half-run sweep.

use std::path::Path;

/// What replaces itself with each account id in `--assume-role`.
pub const ACCOUNT_PLACEHOLDER: &str = "{account}";

/// The session name of the role assumed in each account (it shows in CloudTrail as the
/// assumed-role's session, so that the account's owners can tell the sweep's calls).
pub const SESSION_NAME: &str = "teardown-sweep";

/// `--assume-role`: the ARN of the role to assume in each account, `{account}` standing for the
/// account id, e.g. `arn:aws:iam::{account}:role/teardown-sweep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleTemplate(String);

impl RoleTemplate {
    /// Reads a role template: an IAM role ARN with `{account}` in it.
    pub fn parse(text: &str) -> Result<RoleTemplate, String> {
        let example = "e.g. --assume-role 'arn:aws:iam::{account}:role/teardown-sweep'";
        if !text.contains(ACCOUNT_PLACEHOLDER) {
            return Err(format!(
                "`{text}` does not say where each account's id goes: put {ACCOUNT_PLACEHOLDER} in it, {example}"
            ));
        }
        let filled = text.replace(ACCOUNT_PLACEHOLDER, "123456789012");
        if !filled.starts_with("arn:") || !filled.contains(":role/") {
            return Err(format!("`{text}` is not an IAM role ARN, {example}"));
        }
        if filled.contains(['{', '}']) {
            return Err(format!(
                "`{text}` has a placeholder other than {ACCOUNT_PLACEHOLDER}, {example}"
            ));
        }
        Ok(RoleTemplate(text.to_string()))
    }

    /// The role's ARN in `account`.
    pub fn for_account(&self, account: &str) -> String {
        self.0.replace(ACCOUNT_PLACEHOLDER, account)
    }
}

impl std::fmt::Display for RoleTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `--accounts`: the account ids to sweep, in order, each once.
///
/// Either a comma-separated list (`111111111111,222222222222`) or `@FILE`: a file with one
/// account id per line, where blank lines and everything after a `#` are ignored (so that the
/// file can say whose each account is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountList(pub Vec<String>);

impl AccountList {
    /// Reads `--accounts` (reading the file of `@FILE`).
    pub fn parse(text: &str) -> Result<AccountList, String> {
        match text.strip_prefix('@') {
            Some(path) => {
                let path = Path::new(path);
                let contents = std::fs::read_to_string(path).map_err(|e| {
                    format!("cannot read the accounts file {}: {e}", path.display())
                })?;
                AccountList::from_file(&contents)
                    .map_err(|e| format!("in the accounts file {}: {e}", path.display()))
            }
            None => AccountList::from_ids(text.split(',').map(|id| (id.trim(), None))),
        }
    }

    /// Reads the text of an accounts file.
    pub fn from_file(contents: &str) -> Result<AccountList, String> {
        AccountList::from_ids(contents.lines().enumerate().filter_map(|(i, line)| {
            let id = line.split('#').next().unwrap_or_default().trim();
            (!id.is_empty()).then_some((id, Some(i + 1)))
        }))
    }

    fn from_ids<'a>(
        ids: impl Iterator<Item = (&'a str, Option<usize>)>,
    ) -> Result<AccountList, String> {
        let mut accounts: Vec<String> = Vec::new();
        for (id, line) in ids {
            let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
            if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "{at}`{id}` is not an AWS account id (12 digits, e.g. 123456789012)"
                ));
            }
            if !accounts.iter().any(|a| a == id) {
                accounts.push(id.to_string());
            }
        }
        if accounts.is_empty() {
            return Err(
                "no account id: give 111111111111,222222222222 or @FILE (one id a line)".into(),
            );
        }
        Ok(AccountList(accounts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_template_needs_the_account_placeholder_and_an_arn() {
        let role = RoleTemplate::parse("arn:aws:iam::{account}:role/teardown-sweep").unwrap();
        assert_eq!(
            role.for_account("111111111111"),
            "arn:aws:iam::111111111111:role/teardown-sweep"
        );
        let e = RoleTemplate::parse("arn:aws:iam::111111111111:role/x").unwrap_err();
        assert!(e.contains("put {account} in it"), "{e}");
        let e = RoleTemplate::parse("teardown-{account}").unwrap_err();
        assert!(e.contains("is not an IAM role ARN"), "{e}");
        let e = RoleTemplate::parse("arn:aws:iam::{account}:role/{name}").unwrap_err();
        assert!(e.contains("a placeholder other than {account}"), "{e}");
    }

    #[test]
    fn accounts_are_a_list_or_a_file_of_twelve_digit_ids() {
        assert_eq!(
            AccountList::parse("111111111111, 222222222222,111111111111").unwrap(),
            AccountList(vec!["111111111111".into(), "222222222222".into()])
        );
        let e = AccountList::parse("111111111111,12345").unwrap_err();
        assert!(e.contains("`12345` is not an AWS account id"), "{e}");
        assert!(AccountList::parse("").is_err());
        let file = "# lab accounts\n111111111111  # workshops\n\n222222222222\n";
        assert_eq!(
            AccountList::from_file(file).unwrap(),
            AccountList(vec!["111111111111".into(), "222222222222".into()])
        );
        let e = AccountList::from_file("111111111111\nabc\n").unwrap_err();
        assert!(e.starts_with("line 2: `abc`"), "{e}");
        let e = AccountList::parse("@/nonexistent/accounts.txt").unwrap_err();
        assert!(e.contains("cannot read the accounts file"), "{e}");
    }
}
