//! How a command ended, and the exit code each ending has: the README's exit-code table, in one
//! place for every command (`run`, `preview`, `resume`, `apply`, `sweep`...).

use std::process::ExitCode;

/// How a command ended; each has its exit code (documented in the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything succeeded (a preview: and, with --detailed-exitcode, nothing to delete).
    Success,
    /// A step failed or was skipped.
    StepsFailed,
    /// Bad input: the plan, a flag, a phase.
    BadInput,
    /// Refused before any change: wrong account or region, no credentials, no confirmation.
    Refused,
    /// A preview with --detailed-exitcode found something to delete.
    ChangesPending,
    /// The account is not as the plan expects, found before any change: a lookup found no single
    /// value, a step matched more or fewer resources than its `expect`, or no step matched anything.
    NotAsExpected,
    /// Interrupted by Ctrl-C or SIGTERM.
    Interrupted,
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The exit code as a number (the README's table; reports carry it too).
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::StepsFailed => 1,
            Outcome::BadInput => 2,
            Outcome::Refused => 3,
            Outcome::ChangesPending => 4,
            Outcome::NotAsExpected => 5,
            Outcome::Interrupted => 130,
        }
    }
}
