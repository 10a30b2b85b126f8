//! libFuzzer target: [`fuzzing::reload_answer`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::reload_answer(data));
