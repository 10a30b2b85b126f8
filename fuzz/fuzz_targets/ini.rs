//! libFuzzer target: [`fuzzing::ini`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::ini(data));
