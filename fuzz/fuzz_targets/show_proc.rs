//! libFuzzer target: [`fuzzing::show_proc`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::show_proc(data));
