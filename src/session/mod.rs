//! The run session, one floor below the commands: what `run`, `preview`, `resume`, `apply` and
//! `sweep` share to carry a plan out (signals, the run's records and lock).

pub(crate) mod records;
pub(crate) mod signals;
