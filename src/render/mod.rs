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

use clap::ValueEnum;

pub use self::human::HumanRenderer;
pub use self::json::JsonRenderer;
pub use self::plain::PlainRenderer;
pub use self::summary::{write_summary, RunPlace};
use crate::event::Event;

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
    /// The run is over: clear bars, flush.
    fn finish(&mut self) {}
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
