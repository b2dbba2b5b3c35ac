#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| aep2::fuzzing::mandate_json(data));
