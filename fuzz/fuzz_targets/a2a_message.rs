#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| aep2_a2a::fuzzing::a2a_message(data));
