#![no_main]
// The body is `hopluu_fuzzing::config`, also replayed by `hopluu-tests`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hopluu_fuzzing::config(data));
