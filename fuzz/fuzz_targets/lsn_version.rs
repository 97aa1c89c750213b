//! `Lsn` and `SqlVersion`: what parses displays canonically and parses back, JSON forms read
//! back, every canonical numeric(25,0) decimal parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use milink_fuzz::properties;

fuzz_target!(|input: (u128, (u16, u16, u32, u32), &str)| {
    let (number, parts, text) = input;
    properties::lsn_and_version(text, number, parts);
});
