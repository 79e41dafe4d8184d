//! The run's trace: one line per event, the last few kept for a failure
//! report (every one printed with `HOPLUU_SIM_TRACE=1`).

use super::*;

/// Events kept for a failure report.
const TRACE_TAIL: usize = 80;

/// A frame in a line of the trace.
pub(super) fn describe(f: &Frame) -> String {
    match f {
        Frame::Hello(h) => format!("hello({} applied {})", h.node_id, h.applied_from_you),
        Frame::Refusal(r) => format!("refusal({})", r.code),
        Frame::Batch(b) => {
            let docs: Vec<String> = b
                .docs
                .iter()
                .map(|d| match &d.payload {
                    Payload::Changes(c) => format!("{}:c{}", d.doc, c.len()),
                    Payload::Sync(s) => format!("{}:s{}", d.doc, s.len()),
                })
                .collect();
            format!(
                "batch#{} ({},{}] [{}]",
                b.id,
                b.from_seq,
                b.upto_seq,
                docs.join(" ")
            )
        }
        Frame::Ack(a) => {
            // Per document: heads (h), quarantined hashes (q) and the first
            // words of a rejection.
            let docs: Vec<String> = a
                .docs
                .iter()
                .map(|d| {
                    let mut s = format!("{}:h{}", d.doc, d.heads.len());
                    if !d.quarantined.is_empty() {
                        s.push_str(&format!("q{}", d.quarantined.len()));
                    }
                    if !d.rejected.is_empty() {
                        let why: String = d.rejected.chars().take(24).collect();
                        s.push_str(&format!("!{why}"));
                    }
                    s
                })
                .collect();
            format!(
                "ack#{} upto {} [{}]",
                a.batch,
                a.applied_upto,
                docs.join(" ")
            )
        }
        Frame::Report(edges) => format!("report({} edges)", edges.len()),
        Frame::Receipts(r) => format!("receipts(upto {}, {})", r.upto, r.receipts.len()),
    }
}

impl Sim {
    pub(super) fn log(&mut self, line: String) {
        let line = format!("[{}] {line}", self.step);
        if self.print_trace {
            eprintln!("seed {}: {line}", self.seed);
        }
        if self.trace.len() >= TRACE_TAIL {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }
}
