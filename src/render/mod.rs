//! Renderers: they listen to the engine's events and display them. None of them decides
//! anything; the run is the same whatever is shown.
//!
//! - `human`: progress bars (indicatif) on stderr, one line per running step and an overall bar;
//! - `plain`: one line per event on stderr, for logs and CI;
//! - `json`: JSON Lines on stdout, one event per line (the format is in the README, and
//!   `schemas/events.schema.json` describes it).
//!
//! Progress goes to stderr and data to stdout: the bars and the event lines are progress; the
//! summary, the preview's listing and JSON events are data, so `teardown preview PLAN > file`
//! keeps a clean report and still shows its progress on the terminal.

mod human;
mod json;
mod plain;
mod summary;

use std::io::Write;
use std::time::Duration;

use clap::ValueEnum;
use tokio::sync::mpsc::UnboundedReceiver;

pub use self::human::HumanRenderer;
pub use self::json::{event_schema, JsonRenderer};
pub use self::plain::{lines as plain_lines, PlainRenderer};
pub use self::summary::{count_by_kind, write_summary, RunPlace};
use crate::event::{Event, RunClock};

/// How to show a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Progress bars on stderr (the default when stderr is a terminal).
    Human,
    /// One line per event on stderr (the default when stderr is not a terminal).
    Plain,
    /// JSON Lines on stdout, one event per line; everything for people goes to stderr.
    Json,
}

impl OutputFormat {
    /// The format asked for, or the default: progress bars when stderr is a terminal, since that
    /// is where they draw (`teardown preview PLAN > file` on a terminal still shows them, and
    /// `2> file` still gets its lines), plain lines elsewhere. `NO_COLOR` is not consulted here:
    /// it removes colour, not the bars (no-color.org), and the terminal library honours it.
    ///
    /// Bars asked for where stderr is not a terminal would draw nothing at all (the terminal
    /// library hides them): plain lines are shown instead, and a note on stderr says so.
    pub fn chosen(asked: Option<OutputFormat>) -> OutputFormat {
        use std::io::IsTerminal as _;
        let format = OutputFormat::chosen_for(asked, std::io::stderr().is_terminal());
        if asked == Some(OutputFormat::Human) && format != OutputFormat::Human {
            eprintln!("note: --output human draws progress bars on a terminal, and stderr is not one: showing plain lines instead");
        }
        format
    }

    /// [`OutputFormat::chosen`], given whether stderr is a terminal.
    pub fn chosen_for(asked: Option<OutputFormat>, stderr_is_terminal: bool) -> OutputFormat {
        match asked {
            Some(OutputFormat::Human) | None if stderr_is_terminal => OutputFormat::Human,
            Some(OutputFormat::Json) => OutputFormat::Json,
            _ => OutputFormat::Plain,
        }
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

/// A renderer for the format: progress (bars, plain lines) on stderr, JSON events on stdout.
pub fn for_format(format: OutputFormat) -> Box<dyn Renderer> {
    match format {
        OutputFormat::Human => Box::new(HumanRenderer::new()),
        OutputFormat::Plain => Box::new(PlainRenderer::new(Box::new(std::io::stderr()))),
        OutputFormat::Json => Box::new(JsonRenderer::new(Box::new(std::io::stdout()))),
    }
}

/// Where a line for people goes: stdout with the rest of the report, but stderr when stdout
/// carries JSON Lines (which must be JSON to its last line).
pub fn report_sink(format: OutputFormat) -> Box<dyn Write> {
    if format == OutputFormat::Json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    }
}

/// Writes to a sink and ignores a closed pipe (`teardown run ... | head` must not panic).
pub(crate) fn write_line(out: &mut dyn Write, line: &str) {
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::OutputFormat::{self, *};

    #[test]
    fn the_default_follows_stderr_where_the_bars_draw() {
        assert_eq!(OutputFormat::chosen_for(None, true), Human);
        assert_eq!(OutputFormat::chosen_for(None, false), Plain);
        assert_eq!(OutputFormat::chosen_for(Some(Json), true), Json);
        assert_eq!(OutputFormat::chosen_for(Some(Plain), true), Plain);
        // Bars where they cannot draw would show nothing: plain lines instead.
        assert_eq!(OutputFormat::chosen_for(Some(Human), false), Plain);
    }
}
