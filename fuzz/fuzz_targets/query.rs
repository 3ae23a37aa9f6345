//! libFuzzer entry point of the `query` target; its body is `iot_fuzz::targets::query`, shared with the smoke runner.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iot_fuzz::targets::query(data));
