//! libFuzzer target: [`fuzzing::show_info`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::show_info(data));
