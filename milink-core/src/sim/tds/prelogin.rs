//! PRELOGIN: the client's options in, the server's answer out, and the encryption they agree on.

use super::types::{Malformed, malformed};

const VERSION: u8 = 0;
const ENCRYPTION: u8 = 1;
const INSTOPT: u8 = 2;
const THREADID: u8 = 3;
const MARS: u8 = 4;
const FEDAUTHREQUIRED: u8 = 6;
const TERMINATOR: u8 = 0xFF;

/// The encryption levels of PRELOGIN.
pub(crate) const ENCRYPT_OFF: u8 = 0;
pub(crate) const ENCRYPT_ON: u8 = 1;
pub(crate) const ENCRYPT_NOT_SUP: u8 = 2;
pub(crate) const ENCRYPT_REQ: u8 = 3;

/// What the client's PRELOGIN asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientPrelogin {
    pub(crate) encryption: u8,
    pub(crate) fed_auth_required: bool,
}

/// How the connection goes on after PRELOGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negotiated {
    /// No TLS at all (the client cannot encrypt and the server allows it).
    Plain,
    /// TLS for the login only, then plaintext (the client said Off).
    LoginOnly,
    /// TLS for everything.
    Full,
    /// The server requires encryption and the client cannot: close.
    Refuse,
}

pub(crate) fn parse(payload: &[u8]) -> Result<ClientPrelogin, Malformed> {
    let mut out = ClientPrelogin {
        encryption: ENCRYPT_NOT_SUP,
        fed_auth_required: false,
    };
    let mut pos = 0;
    loop {
        let token = *payload
            .get(pos)
            .ok_or_else(|| malformed("PRELOGIN without terminator"))?;
        if token == TERMINATOR {
            return Ok(out);
        }
        let field = payload
            .get(pos + 1..pos + 5)
            .ok_or_else(|| malformed("PRELOGIN option truncated"))?;
        let offset = usize::from(u16::from_be_bytes([field[0], field[1]]));
        let length = usize::from(u16::from_be_bytes([field[2], field[3]]));
        let data = payload
            .get(offset..offset + length)
            .ok_or_else(|| malformed("PRELOGIN option outside the message"))?;
        match (token, data.first()) {
            (ENCRYPTION, Some(&level)) => out.encryption = level,
            (FEDAUTHREQUIRED, Some(&flag)) => out.fed_auth_required = flag != 0,
            _ => {}
        }
        pos += 5;
    }
}

/// What the server answers to `client` (MS-TDS 2.2.6.5): TLS whenever the client can, for the
/// login only if it asked Off and the server does not require more.
pub(crate) fn negotiate(client: u8, server_requires: bool) -> (u8, Negotiated) {
    match (client, server_requires) {
        (ENCRYPT_NOT_SUP, false) => (ENCRYPT_NOT_SUP, Negotiated::Plain),
        (ENCRYPT_NOT_SUP, true) => (ENCRYPT_REQ, Negotiated::Refuse),
        (ENCRYPT_OFF, false) => (ENCRYPT_OFF, Negotiated::LoginOnly),
        (ENCRYPT_OFF, true) => (ENCRYPT_REQ, Negotiated::Full),
        _ => (ENCRYPT_ON, Negotiated::Full),
    }
}

/// The server's PRELOGIN answer: version, encryption, an empty instance (accepted), no thread id,
/// no MARS, and FEDAUTHREQUIRED echoed when the client sent it.
pub(crate) fn response(encryption: u8, fed_auth: bool) -> Vec<u8> {
    let encryption = [encryption];
    let mut options: Vec<(u8, &[u8])> = vec![
        (VERSION, &[16, 0, 0x10, 0x00, 0, 0]), // 16.0.4096.0
        (ENCRYPTION, &encryption),
        (INSTOPT, &[0]),
        (THREADID, &[]),
        (MARS, &[0]),
    ];
    if fed_auth {
        options.push((FEDAUTHREQUIRED, &[1]));
    }
    let mut head = Vec::new();
    let mut data = Vec::new();
    let mut offset = options.len() * 5 + 1;
    for (token, value) in options {
        head.push(token);
        head.extend_from_slice(&(offset as u16).to_be_bytes());
        head.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
        offset += value.len();
    }
    head.push(TERMINATOR);
    head.extend_from_slice(&data);
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tds_prelogin_answer_parses_back_and_negotiation_follows_the_spec() {
        let answer = response(ENCRYPT_ON, true);
        let parsed = parse(&answer).unwrap();
        assert_eq!(
            (parsed.encryption, parsed.fed_auth_required),
            (ENCRYPT_ON, true)
        );
        assert_eq!(negotiate(ENCRYPT_REQ, true), (ENCRYPT_ON, Negotiated::Full));
        assert_eq!(
            negotiate(ENCRYPT_OFF, false),
            (ENCRYPT_OFF, Negotiated::LoginOnly)
        );
        assert_eq!(negotiate(ENCRYPT_NOT_SUP, true).1, Negotiated::Refuse);
        for cut in 0..answer.len() - 1 {
            let _ = parse(&answer[..cut]); // an error or a partial answer, never a panic
        }
        assert!(parse(&[ENCRYPTION, 0xFF, 0xFF, 0, 1]).is_err());
    }
}
