//! libFuzzer target: [`fuzzing::servers_state`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::servers_state(data));
