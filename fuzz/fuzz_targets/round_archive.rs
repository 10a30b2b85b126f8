//! libFuzzer target: [`fuzzing::round_archive`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::round_archive(data));
