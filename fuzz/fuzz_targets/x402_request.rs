#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| aep2_x402::fuzzing::x402_request(data));
