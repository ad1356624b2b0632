//! SNS: `sns.delete-topic` (one file per action; nothing shared yet).

mod delete_topic;

pub use self::delete_topic::DELETE_TOPIC;
