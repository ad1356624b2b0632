//! ECR: `ecr.delete-repository` (one file per action; nothing shared yet).

mod delete_repository;

pub use self::delete_repository::DELETE_REPOSITORY;
