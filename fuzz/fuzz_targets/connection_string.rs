//! Connection strings: what parses writes text that parses back to the same pairs; a string
//! derived for a redirect keeps every key it does not own, owns `Data Source` once and the
//! authentication keys as chosen, and shows nothing that depends on the password.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use milink_fuzz::properties::{self, RedirectCase};

#[derive(Debug, Arbitrary)]
struct Input {
    text: String,
    secret_key: u8,
    password: String,
    other_password: String,
    auth: u8,
    user: String,
    endpoint: u8,
    port: u16,
}

fuzz_target!(|input: Input| {
    properties::connection_string(&input.text);
    properties::redirect(&RedirectCase {
        text: input.text,
        secret_key: input.secret_key,
        password: input.password,
        other_password: input.other_password,
        auth: input.auth,
        user: input.user,
        endpoint: input.endpoint,
        port: input.port,
    });
});
