//! JSON Lines: every event as one JSON object on its own line, and the JSON Schema of a line.

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

/// The JSON Schema (draft 2020-12) of one line of `--output json`, generated from the event
/// types as they are serialized. `schemas/events.schema.json` is this, written out (a test keeps
/// the two equal).
pub fn event_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Event>();
    schema.insert(
        "description".into(),
        "One line of `teardown run|preview|resume|apply|sweep --output json` (JSON Lines: one event per line).".into(),
    );
    schema.to_value()
}
