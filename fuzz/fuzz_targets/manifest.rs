//! libFuzzer target: [`fuzzing::manifest`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::manifest(data));
