//! libFuzzer target: [`fuzzing::stat_reader`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::stat_reader(data));
