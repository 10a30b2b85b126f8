//! libFuzzer target: [`fuzzing::targets_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::targets_file(data));
