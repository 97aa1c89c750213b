//! Identifier, `N'…'` and binary literal quoting: one token equal to the input, also inside a
//! statement; validated names quote the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use milink_fuzz::properties;

fuzz_target!(|value: &str| {
    properties::quoting(value);
});
