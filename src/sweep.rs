//! Sweeps: one plan applied to every lab found in an account (being written).

use clap::Args;
use std::path::PathBuf;

use crate::cli::Outcome;

/// `teardown sweep` arguments.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The plan file, with a `[sweep]` section.
    pub plan: PathBuf,
}

/// Runs `teardown sweep`.
pub async fn run(_args: SweepArgs) -> Outcome {
    eprintln!("error: sweeps are not written yet");
    Outcome::BadInput
}
