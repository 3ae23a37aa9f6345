//! libFuzzer entry point of the `probe_error_body` target; its body is `iot_fuzz::targets::probe_error`, shared with the smoke runner.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iot_fuzz::targets::probe_error(data));
