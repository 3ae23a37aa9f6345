//! libFuzzer entry point of the `request_router` target; its body is `iot_fuzz::targets::request_router`, shared with the smoke runner.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iot_fuzz::targets::request_router(data));
