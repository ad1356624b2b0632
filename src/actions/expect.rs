//! How many resources a step expects to match (`expect = "one"`), and the check that stops a run
//! before any change when the account holds another number. The workshop has exactly one cluster,
//! one repository, one rotation stack per lab: a step that finds two of them is reaching into
//! another lab, and one that finds none is looking in the wrong place. Both are loud.

use crate::resource::Resource;
use crate::util::count_of;

/// The words `expect` takes, for messages and docs.
pub const EXPECT_FORMS: &str =
    "\"one\", \"at-least-one\", \"at-most-one\", \"any\", or a whole number (exactly that many)";

/// The number of matches a step accepts, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// At least this many.
    pub min: usize,
    /// At most this many, when bounded.
    pub max: Option<usize>,
}

impl Expect {
    /// Any number, zero included: what a step without `expect` accepts.
    pub const ANY: Expect = Expect { min: 0, max: None };

    /// Reads `expect` from a plan: one of [`EXPECT_FORMS`].
    pub fn parse(value: &toml::Value) -> Result<Expect, String> {
        let exactly = |n: usize| Expect {
            min: n,
            max: Some(n),
        };
        match value {
            toml::Value::String(word) => match word.as_str() {
                "one" => Ok(exactly(1)),
                "at-least-one" => Ok(Expect { min: 1, max: None }),
                "at-most-one" => Ok(Expect {
                    min: 0,
                    max: Some(1),
                }),
                "any" => Ok(Expect::ANY),
                other => Err(format!("unknown count \"{other}\"")),
            },
            toml::Value::Integer(n) if (0..=100_000).contains(n) => Ok(exactly(*n as usize)),
            toml::Value::Integer(n) => Err(format!("{n} is not a count from 0 to 100000")),
            _ => Err("`expect` takes a word or a whole number".into()),
        }
    }

    /// The same bound without its minimum: for a resumed run, whose steps may have finished part
    /// of their work before the interruption.
    pub fn without_minimum(self) -> Expect {
        Expect { min: 0, ..self }
    }

    /// True when `count` is within the bounds.
    pub fn allows(&self, count: usize) -> bool {
        count >= self.min && self.max.is_none_or(|max| count <= max)
    }

    /// The bound in words: `exactly one`, `at least 1`, `at most 1`, `from 2 to 3`.
    pub fn describe(&self, kind: &str) -> String {
        match (self.min, self.max) {
            (min, Some(max)) if min == max => format!("exactly {}", count_of(min, kind)),
            (0, Some(max)) => format!("at most {}", count_of(max, kind)),
            (min, None) => format!("at least {}", count_of(min, kind)),
            (min, Some(max)) => format!("from {min} to {}", count_of(max, kind)),
        }
    }

    /// `Err` with the whole story when `found` is out of bounds: what was expected, what matched
    /// and why each matched, and that nothing was changed.
    pub fn check(&self, kind: &str, found: &[Resource]) -> Result<(), String> {
        if self.allows(found.len()) {
            return Ok(());
        }
        let mut message = format!("expected {}, matched {}", self.describe(kind), found.len());
        if found.is_empty() {
            message.push_str(": check the variables the step's `match` uses (the preview lists each with where its value came from)");
        } else {
            message.push(':');
            for resource in found {
                message.push_str(&format!(
                    "\n  - {} ({})",
                    resource.name, resource.matched_because
                ));
            }
        }
        message.push_str("\nnothing was changed by this step");
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(n: usize) -> Vec<Resource> {
        (0..n)
            .map(|i| {
                Resource::new(
                    "CloudFormation stack",
                    format!("id-{i}"),
                    format!("stack-{i}"),
                    "name matches \"stack-*\"",
                )
            })
            .collect()
    }

    #[test]
    fn words_and_numbers_read_as_bounds() {
        let parse = |v: toml::Value| Expect::parse(&v).unwrap();
        assert_eq!(
            parse("one".into()),
            Expect {
                min: 1,
                max: Some(1)
            }
        );
        assert_eq!(parse("at-least-one".into()), Expect { min: 1, max: None });
        assert_eq!(
            parse("at-most-one".into()),
            Expect {
                min: 0,
                max: Some(1)
            }
        );
        assert_eq!(parse("any".into()), Expect::ANY);
        assert_eq!(
            parse(3.into()),
            Expect {
                min: 3,
                max: Some(3)
            }
        );
        assert!(Expect::parse(&"two".into()).is_err());
        assert!(Expect::parse(&(-1).into()).is_err());
        assert!(Expect::parse(&true.into()).is_err());
    }

    #[test]
    fn two_where_one_is_expected_lists_both_with_their_reasons() {
        let one = Expect::parse(&"one".into()).unwrap();
        assert!(one.check("CloudFormation stack", &found(1)).is_ok());
        let err = one.check("CloudFormation stack", &found(2)).unwrap_err();
        assert!(
            err.starts_with("expected exactly 1 CloudFormation stack, matched 2:"),
            "{err}"
        );
        assert!(err.contains("stack-0 (name matches \"stack-*\")"), "{err}");
        assert!(err.contains("stack-1"), "{err}");
        assert!(err.ends_with("nothing was changed by this step"), "{err}");
        let none = one.check("CloudFormation stack", &[]).unwrap_err();
        assert!(none.contains("matched 0"), "{none}");
    }

    #[test]
    fn a_resumed_run_accepts_fewer_but_never_more() {
        let one = Expect::parse(&"one".into()).unwrap().without_minimum();
        assert!(one.allows(0));
        assert!(one.allows(1));
        assert!(!one.allows(2));
    }
}
