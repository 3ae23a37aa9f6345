//! libFuzzer entry point of the `timestamp` target; its body is `iot_fuzz::targets::timestamp`, shared with the smoke runner.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iot_fuzz::targets::timestamp(data));
