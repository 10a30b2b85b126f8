//! libFuzzer target: [`fuzzing::show_stat`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::show_stat(data));
