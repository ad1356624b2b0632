//! Renderers: they listen to the engine's events and display them. None of them decides
//! anything; the run is the same whatever is shown.
//!
//! - `human`: progress bars (indicatif), one line per running step and an overall bar;
//! - `plain`: one line per event, for logs and CI;
//! - `json`: JSON Lines, one event per line (the format is in the README).

mod human;
mod json;
mod plain;
mod summary;

use std::io::Write;
use std::time::Duration;

use clap::ValueEnum;
use tokio::sync::mpsc::UnboundedReceiver;

pub use self::human::HumanRenderer;
pub use self::json::JsonRenderer;
pub use self::plain::{lines as plain_lines, PlainRenderer};
pub use self::summary::{count_by_kind, write_summary, RunPlace};
use crate::event::{Event, RunClock};

/// How to show a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Progress bars (the default on a terminal).
    Human,
    /// One line per event (the default when stdout is not a terminal, or NO_COLOR is set).
    Plain,
    /// JSON Lines, one event per line.
    Json,
}

impl OutputFormat {
    /// The format asked for, or the default: progress bars on a terminal, plain lines elsewhere.
    pub fn chosen(asked: Option<OutputFormat>) -> OutputFormat {
        use std::io::IsTerminal as _;
        asked.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
                OutputFormat::Human
            } else {
                OutputFormat::Plain
            }
        })
    }
}

/// Something that displays events.
pub trait Renderer: Send {
    /// Shows one event.
    fn event(&mut self, event: &Event);
    /// Called about once a second between events, with the time since the run started (the
    /// clock of [`Event::elapsed`]): a renderer that shows a countdown moves it on here.
    fn tick(&mut self, _now: Duration) {}
    /// The run is over: clear bars, flush.
    fn finish(&mut self) {}
}

/// How often a renderer is ticked between events.
pub const TICK: Duration = Duration::from_secs(1);

/// Shows a run's events as they come, and ticks the renderer every [`TICK`] in between, so that
/// a wait's countdown moves on its own between two looks of the step. `also` sees each event
/// before the renderer does (the journal and audit log). Returns once every sink of the channel
/// is dropped and the renderer has finished.
pub async fn listen(
    mut receiver: UnboundedReceiver<Event>,
    clock: RunClock,
    mut renderer: Box<dyn Renderer>,
    mut also: impl FnMut(&Event) + Send,
) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Events first: a tick never shows a line older than an event already sent.
            biased;
            event = receiver.recv() => match event {
                Some(event) => {
                    also(&event);
                    renderer.event(&event);
                }
                None => break,
            },
            _ = ticks.tick() => renderer.tick(clock.now()),
        }
    }
    renderer.finish();
}

/// A renderer for the format, writing to stdout.
pub fn for_format(format: OutputFormat) -> Box<dyn Renderer> {
    match format {
        OutputFormat::Human => Box::new(HumanRenderer::new()),
        OutputFormat::Plain => Box::new(PlainRenderer::new(Box::new(std::io::stdout()))),
        OutputFormat::Json => Box::new(JsonRenderer::new(Box::new(std::io::stdout()))),
    }
}

/// Writes to a sink and ignores a closed pipe (`teardown run ... | head` must not panic).
pub(crate) fn write_line(out: &mut dyn Write, line: &str) {
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
