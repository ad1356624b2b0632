//! EventBridge (CloudWatch Events): `events.delete-rule` (one file per action; nothing shared
//! yet).

mod delete_rule;

pub use self::delete_rule::DELETE_RULE;
