//! libFuzzer entry point; the body lives in the library so CI replays the corpus on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    strongroom_fuzz::message(data);
});
