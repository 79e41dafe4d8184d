#![no_main]
// The body is `hopluu_cli::fuzzing::automerge_payload`, also replayed by `hopluu-tests`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hopluu_cli::fuzzing::automerge_payload(data));
