//! libFuzzer target: [`fuzzing::health_json`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::health_json(data));
