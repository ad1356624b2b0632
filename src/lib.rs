//! teardown takes AWS accounts apart in the right order, from a declarative plan.
//!
//! A plan file ([`plan`]) becomes a validated dependency graph ([`graph::Dag`]); the generic
//! executor ([`engine`]) runs its steps concurrently, with timeouts, retries and cancellation, and
//! emits [`event`]s that renderers display. The steps are AWS [`actions`], one
//! file per resource kind, that share one shape: find what matches, change it, wait until done.
#![warn(missing_docs)]

/// Prints on stdout, ignoring a closed pipe: `teardown run ... | head -1` must neither panic (as
/// `println!` does on EPIPE) nor stop a run whose record is its journal and audit log.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod actions;
pub mod aws;
pub mod cli;
pub mod engine;
pub mod event;
pub mod graph;
pub mod guard;
pub mod init;
pub mod journal;
pub mod lock;
pub mod outcome;
pub mod plan;
pub mod preview;
pub mod render;
pub mod resolve;
pub mod resource;
pub mod run_dir;
pub mod session;
pub mod settings;
pub mod sweep;
pub mod util;
