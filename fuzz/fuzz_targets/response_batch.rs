//! libFuzzer entry point of the `response_batch` target; its body is `iot_fuzz::targets::response_batch`, shared with the smoke runner.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iot_fuzz::targets::response_batch(data));
