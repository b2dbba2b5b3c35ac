#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| aep2::fuzzing::verify_ed25519(data));
