//! libFuzzer entry point of the `ids` target; its body is `iot_fuzz::targets::ids`, shared with the smoke runner.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iot_fuzz::targets::ids(data));
