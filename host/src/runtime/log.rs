//! Host side of `switchyard:plugin/log`: plugin log lines become tagged `tracing` events.

use super::bindings::log::{Host, Level};
use super::state::CallState;

/// Lines one call may write; the rest are dropped (one notice says so).
pub(crate) const LINES_PER_CALL: u32 = 64;
/// Longest message or field value kept, in bytes.
const MAX_TEXT: usize = 2048;
/// Most fields kept per line.
const MAX_FIELDS: usize = 16;

fn clip(mut s: String) -> String {
    if s.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

impl Host for CallState {
    fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        if self.log_budget == 0 {
            return;
        }
        self.log_budget -= 1;
        let plugin = self.plugin.label.as_str();
        let connection = self.scope.connection.as_deref().unwrap_or("");
        let endpoint = self.scope.endpoint.as_deref().unwrap_or("");
        let fields: Vec<String> = fields
            .into_iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| format!("{}={}", clip(k), clip(v)))
            .collect();
        let fields = fields.join(" ");
        let message = if self.log_budget == 0 {
            format!(
                "{} (log limit reached: further lines of this call dropped)",
                clip(message)
            )
        } else {
            clip(message)
        };
        match level {
            Level::Trace => {
                tracing::trace!(target: "plugin", plugin, connection, endpoint, %fields, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "plugin", plugin, connection, endpoint, %fields, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "plugin", plugin, connection, endpoint, %fields, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "plugin", plugin, connection, endpoint, %fields, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "plugin", plugin, connection, endpoint, %fields, "{message}")
            }
        }
    }
}

impl super::bindings::types::Host for CallState {}
