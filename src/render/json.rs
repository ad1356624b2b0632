//! JSON Lines: every event as one JSON object on its own line.

use std::io::Write;

use super::{write_line, Renderer};
use crate::event::Event;

/// Writes each event as one line of JSON.
pub struct JsonRenderer {
    out: Box<dyn Write + Send>,
}

impl JsonRenderer {
    /// A renderer writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> JsonRenderer {
        JsonRenderer { out }
    }
}

impl Renderer for JsonRenderer {
    fn event(&mut self, event: &Event) {
        match serde_json::to_string(event) {
            Ok(line) => write_line(&mut self.out, &line),
            Err(e) => write_line(
                &mut self.out,
                &format!("{{\"event\":\"render_error\",\"error\":\"{e}\"}}"),
            ),
        }
    }
}
