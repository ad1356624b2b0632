//! Progress bars for a person at a terminal: a spinner line per running step (elapsed time, what
//! it is doing, resources done/total) above an overall bar of finished steps. A waiting step's
//! line counts down every second from the deadline its event carries, not only when the step
//! looks again.

use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Renderer;
use crate::event::{Event, EventKind, Waiting};
use crate::util::short_duration;

/// Draws indicatif progress bars on stderr.
pub struct HumanRenderer {
    bars: MultiProgress,
    overall: ProgressBar,
    steps: HashMap<String, ProgressBar>,
    /// The steps that wait, and for what: their lines are redrawn at every tick.
    waits: HashMap<String, Waiting>,
}

impl Default for HumanRenderer {
    fn default() -> Self {
        Self::new()
    }
}

fn step_style(with_counts: bool) -> ProgressStyle {
    let template = if with_counts {
        "{spinner:.cyan} {prefix:<30.bold} {elapsed:>4} {msg} [{pos}/{len}]"
    } else {
        "{spinner:.cyan} {prefix:<30.bold} {elapsed:>4} {msg}"
    };
    ProgressStyle::with_template(template).expect("valid template")
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:<32.bold} {msg}").expect("valid template")
}

impl HumanRenderer {
    /// Bars on stderr, so that stdout stays clean for the summary.
    pub fn new() -> HumanRenderer {
        HumanRenderer::drawing_to(ProgressDrawTarget::stderr())
    }

    /// Bars drawn to `target` (`ProgressDrawTarget::hidden()` in tests, which then read each
    /// line with [`HumanRenderer::step_line`]).
    pub fn drawing_to(target: ProgressDrawTarget) -> HumanRenderer {
        let bars = MultiProgress::with_draw_target(target);
        let overall = bars.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:<32.bold} [{bar:30.green/white}] {pos}/{len} steps  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        overall.set_prefix("overall");
        HumanRenderer {
            bars,
            overall,
            steps: HashMap::new(),
            waits: HashMap::new(),
        }
    }

    /// What the line of a running step says now (its message), or `None` once it finished.
    pub fn step_line(&self, step: &str) -> Option<String> {
        self.steps.get(step).map(ProgressBar::message)
    }

    fn finish_step(&mut self, step: &str, mark: &str, message: String) {
        self.waits.remove(step);
        let bar = match self.steps.remove(step) {
            Some(bar) => bar,
            None => self.bars.insert_before(&self.overall, ProgressBar::new(0)),
        };
        bar.set_style(done_style());
        bar.set_prefix(format!("{mark} {step}"));
        bar.finish_with_message(message);
        self.overall.inc(1);
    }
}

impl Renderer for HumanRenderer {
    fn event(&mut self, event: &Event) {
        match &event.kind {
            EventKind::RunStarted {
                plan,
                steps,
                dry_run,
            } => {
                self.overall.set_length(*steps as u64);
                self.overall.set_message(if *dry_run {
                    format!("{plan} (dry run)")
                } else {
                    plan.clone()
                });
            }
            EventKind::StepStarted { step, action } => {
                let bar = self.bars.insert_before(&self.overall, ProgressBar::new(0));
                bar.set_style(step_style(false));
                bar.set_prefix(step.clone());
                bar.set_message(action.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                self.steps.insert(step.clone(), bar);
            }
            EventKind::StepProgress {
                step,
                message,
                done,
                total,
                wait,
            } => {
                if let Some(bar) = self.steps.get(step) {
                    if *total > 0 {
                        bar.set_style(step_style(true));
                        bar.set_length(*total);
                        bar.set_position(*done);
                    }
                    match wait {
                        Some(wait) => {
                            bar.set_message(wait.line_at(event.elapsed));
                            self.waits.insert(step.clone(), wait.clone());
                        }
                        None => {
                            bar.set_message(message.clone());
                            self.waits.remove(step);
                        }
                    }
                }
            }
            EventKind::AttemptFailed {
                step,
                attempt,
                error,
                retry_in,
            } => {
                self.waits.remove(step);
                if let Some(bar) = self.steps.get(step) {
                    bar.set_message(format!(
                        "attempt {attempt} failed ({error}); retrying in {}",
                        short_duration(*retry_in)
                    ));
                }
            }
            EventKind::HandlerStarted { step, handler, .. } => {
                self.waits.remove(step);
                if let Some(bar) = self.steps.get(step) {
                    bar.set_message(format!("failed; running {handler}, then trying again"));
                }
            }
            EventKind::StepSucceeded {
                step,
                duration,
                summary,
                ..
            } => {
                self.finish_step(
                    step,
                    "✔",
                    format!("{summary} ({})", short_duration(*duration)),
                );
            }
            EventKind::StepFailed { step, error, .. } => {
                self.finish_step(step, "✘", format!("FAILED: {error}"));
            }
            EventKind::StepSkipped { step, reason } => {
                self.finish_step(step, "-", format!("skipped: {reason}"));
            }
            EventKind::RunCancelled { reason } => {
                let _ = self.bars.println(format!("run cancelled: {reason}; no new steps will start (Ctrl-C again to exit at once)"));
            }
            EventKind::RunFinished { duration, .. } => {
                self.overall
                    .finish_with_message(format!("finished in {}", short_duration(*duration)));
            }
        }
    }

    fn tick(&mut self, now: Duration) {
        for (step, wait) in &self.waits {
            if let Some(bar) = self.steps.get(step) {
                bar.set_message(wait.line_at(now));
            }
        }
    }

    fn finish(&mut self) {
        self.waits.clear();
        for (_, bar) in self.steps.drain() {
            bar.abandon();
        }
        self.overall.abandon();
    }
}
