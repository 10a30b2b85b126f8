//! libFuzzer target: [`fuzzing::log_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::log_message(data));
