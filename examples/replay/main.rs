//! The JSON-lines driver (docs/spec.md §7): replays an event log through the engine.
//!
//! ```text
//! cargo run --example replay < events.jsonl
//! ```
//!
//! One JSON object a line in, one JSON object a line out. It is how a person replays a
//! production event log ("why did order 42 end up cancelled?"), how a fuzzer's crash is
//! reproduced, and how tests in any language drive the engine. The format is a public
//! interface: see docs/spec.md §7 and the README. Exit status 0 if every line was well-formed,
//! else 2.

use std::io::{self, BufRead, Write};

use serde_json::json;

mod driver;

use driver::{BadInput, Driver};

fn main() {
    let mut driver = Driver::default();
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut all_well_formed = true;
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                all_well_formed = false;
                let v = json!({"outcome": "error", "error": "bad_input", "detail": format!("unreadable line: {e}")});
                let _ = writeln!(out, "{v}");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let v = match driver.line(&line) {
            Ok(v) => v,
            Err(BadInput(detail)) => {
                all_well_formed = false;
                json!({"outcome": "error", "error": "bad_input", "detail": detail})
            }
        };
        if writeln!(out, "{v}").is_err() {
            std::process::exit(2);
        }
    }
    let _ = out.flush();
    std::process::exit(if all_well_formed { 0 } else { 2 });
}
