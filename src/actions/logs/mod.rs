//! CloudWatch Logs: `logs.delete-log-groups` (one file per action; nothing shared yet).

mod delete_log_groups;

pub use self::delete_log_groups::DELETE_LOG_GROUPS;
