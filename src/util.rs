//! Small helpers shared by several layers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns on the detail that `--verbose` asks for (set once, by the command line).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// True with `--verbose`: messages add the whole detail (an SDK error with all its causes) to
/// their one or two lines.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Why a duration was refused: what is wrong, and how to write one that is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    /// What is wrong with it.
    pub problem: String,
    /// What to write instead.
    pub hint: String,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.problem, self.hint)
    }
}

/// The one reader of durations in plans and flags (`"90s"`, `"6h"`, `"1h 30m"`, `"2days"`),
/// with humantime, kept within `range`.
pub fn parse_duration(
    text: &str,
    range: std::ops::RangeInclusive<Duration>,
) -> Result<Duration, DurationError> {
    let (min, max) = (*range.start(), *range.end());
    let span = || match (min, max) {
        (min, Duration::MAX) => format!("of at least {}", humantime::format_duration(min)),
        // Anything above zero: what matters to the reader is the upper bound.
        (min, max) if min <= Duration::from_micros(1) => format!(
            "above zero and at most \"{}\", such as \"45m\" or \"2h\"",
            humantime::format_duration(max)
        ),
        (min, max) => format!(
            "from {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ),
    };
    match humantime::parse_duration(text) {
        Err(e) => Err(DurationError {
            problem: format!("bad duration \"{text}\": {e}"),
            hint: "write durations like \"90s\", \"45m\", \"2h\" or \"1h 30m\"".into(),
        }),
        Ok(d) if d > max => Err(DurationError {
            problem: format!(
                "at most {}, and \"{text}\" is longer",
                humantime::format_duration(max)
            ),
            hint: format!("give a duration {}", span()),
        }),
        Ok(d) if d < min && d.is_zero() => Err(DurationError {
            problem: "a duration of zero".into(),
            hint: format!("give a duration {}", span()),
        }),
        Ok(d) if d < min => Err(DurationError {
            problem: format!(
                "at least {}, and \"{text}\" is shorter",
                humantime::format_duration(min)
            ),
            hint: format!("give a duration {}", span()),
        }),
        Ok(d) => Ok(d),
    }
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn one_reader_for_every_duration_with_its_bounds_in_the_message() {
        let h = Duration::from_secs(3600);
        assert_eq!(
            parse_duration("1h 30m", Duration::ZERO..=Duration::MAX),
            Ok(h + h / 2)
        );
        let e = parse_duration("ten minutes", Duration::ZERO..=Duration::MAX).unwrap_err();
        assert!(e.problem.starts_with("bad duration \"ten minutes\""), "{e}");
        let e = parse_duration("2h", Duration::from_millis(100)..=h).unwrap_err();
        assert_eq!(e.problem, "at most 1h, and \"2h\" is longer");
        assert_eq!(e.hint, "give a duration from 100ms to 1h");
        let e = parse_duration("0s", Duration::from_nanos(1)..=h).unwrap_err();
        assert_eq!(e.problem, "a duration of zero");
        assert!(e.hint.contains("above zero and at most \"1h\""), "{e}");
        let e = parse_duration("10ms", Duration::from_millis(100)..=h).unwrap_err();
        assert_eq!(e.problem, "at least 100ms, and \"10ms\" is shorter");
    }
}

/// A duration for people: `850ms`, `42s`, `14m`, `1h5m`.
pub fn short_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs < 60 {
        let tenths = d.as_millis() / 100;
        if secs < 10 && !tenths.is_multiple_of(10) {
            format!("{}.{}s", tenths / 10, tenths % 10)
        } else {
            format!("{secs}s")
        }
    } else if secs < 3600 {
        let (m, s) = (secs / 60, secs % 60);
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else {
        let (h, m) = (secs / 3600, (secs % 3600) / 60);
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{m}m")
        }
    }
}

/// `1 stack` / `2 stacks`: the count and a word, pluralised the simple English way.
pub fn count_of(n: usize, singular: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {}", plural(singular))
    }
}

/// `stack` -> `stacks`, `repository` -> `repositories`, `ECS task` -> `ECS tasks`.
pub fn plural(singular: &str) -> String {
    if let Some(stem) = singular.strip_suffix('y') {
        if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            return format!("{stem}ies");
        }
    }
    if singular.ends_with('s') {
        format!("{singular}es")
    } else {
        format!("{singular}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(short_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(short_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(short_duration(Duration::from_secs(42)), "42s");
        assert_eq!(short_duration(Duration::from_secs(14 * 60)), "14m");
        assert_eq!(short_duration(Duration::from_secs(65 * 60)), "1h5m");
        assert_eq!(count_of(2, "ECS task"), "2 ECS tasks");
        assert_eq!(count_of(1, "ECS task"), "1 ECS task");
        assert_eq!(count_of(3, "ECR repository"), "3 ECR repositories");
    }
}
