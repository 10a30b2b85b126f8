//! libFuzzer target: [`fuzzing::consul_health`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::consul_health(data));
