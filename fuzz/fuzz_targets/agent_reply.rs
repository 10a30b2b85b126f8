//! libFuzzer target: [`fuzzing::agent_reply`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::agent_reply(data));
