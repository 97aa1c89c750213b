//! The ARM and Arc models: a body that deserializes serializes to JSON that deserializes to the
//! same value and the same JSON; Arc's refusals are typed errors without control characters.
//! The first byte chooses the model, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use milink_fuzz::properties;

fuzz_target!(|data: &[u8]| {
    if let Some((kind, body)) = data.split_first() {
        properties::arm_model(*kind, body);
    }
});
