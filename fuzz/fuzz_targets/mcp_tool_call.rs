#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| aep2_mcp::fuzzing::mcp_tool_call(data));
