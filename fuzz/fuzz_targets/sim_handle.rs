//! libFuzzer entry point of the `sim_handle` target; its body is `iot_fuzz::targets::sim_handle`, shared with the smoke runner.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iot_fuzz::targets::sim_handle(data));
