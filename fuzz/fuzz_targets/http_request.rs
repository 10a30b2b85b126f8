//! libFuzzer target: [`fuzzing::http_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::http_request(data));
