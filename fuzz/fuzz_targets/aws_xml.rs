//! libFuzzer target: [`fuzzing::aws_xml`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::aws_xml(data));
