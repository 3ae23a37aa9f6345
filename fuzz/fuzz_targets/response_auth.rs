//! libFuzzer entry point of the `response_auth` target; its body is `iot_fuzz::targets::response_auth`, shared with the smoke runner.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iot_fuzz::targets::response_auth(data));
