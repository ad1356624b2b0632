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
