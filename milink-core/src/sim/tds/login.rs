//! LOGIN7: the user, the de-obfuscated password, the database and the FEDAUTH access token.

use super::types::{Malformed, Reader, malformed, utf16_to_string};
use crate::secret::Secret;

/// What a client sent in its LOGIN7. `Debug` never shows the password or the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The TDS version the client asked for (0x74000004 for TDS 7.4).
    pub tds_version: u32,
    /// The packet size the client asked for (0: the server's default).
    pub packet_size: u32,
    /// The client's host name.
    pub host_name: String,
    /// The SQL login's user name (empty for a token login).
    pub user: String,
    /// The SQL login's password.
    pub password: Secret,
    /// The application name.
    pub app_name: String,
    /// The server name the client connected to.
    pub server_name: String,
    /// The database to open, if the client named one.
    pub database: Option<String>,
    /// The Entra ID access token of a FEDAUTH login (`AuthMethod::AADToken`).
    pub access_token: Option<Secret>,
}

const FIXED_LEN: usize = 94;
const FEATURE_FEDAUTH: u8 = 0x02;
const FEATURE_TERMINATOR: u8 = 0xFF;
const FEDAUTH_SECURITY_TOKEN: u8 = 0x01;

/// Reverses the LOGIN7 password obfuscation: XOR with 0xA5, then swap the nibbles.
fn clear_password_byte(b: u8) -> u8 {
    (b ^ 0xA5).rotate_left(4)
}

pub(crate) fn parse(payload: &[u8]) -> Result<Login, Malformed> {
    if payload.len() < FIXED_LEN {
        return Err(malformed("LOGIN7 shorter than its fixed part"));
    }
    let mut r = Reader::new(payload);
    let _length = r.u32()?;
    let tds_version = r.u32()?;
    let packet_size = r.u32()?;
    r.bytes(24)?; // client version, pid, connection id, flags, time zone, LCID
    // Offset/length pairs from byte 36; string lengths are in UTF-16 units.
    let mut field = |units: bool| -> Result<&[u8], Malformed> {
        let offset = usize::from(r.u16()?);
        let len = usize::from(r.u16()?) * if units { 2 } else { 1 };
        payload
            .get(offset..offset + len)
            .ok_or_else(|| malformed("LOGIN7 field outside the message"))
    };
    let host_name = utf16_to_string(field(true)?)?;
    let user = utf16_to_string(field(true)?)?;
    let password_bytes: Vec<u8> = field(true)?
        .iter()
        .map(|&b| clear_password_byte(b))
        .collect();
    let app_name = utf16_to_string(field(true)?)?;
    let server_name = utf16_to_string(field(true)?)?;
    let extension = field(false)?;
    let _client_interface = field(true)?;
    let _language = field(true)?;
    let database = utf16_to_string(field(true)?)?;

    let access_token = match extension {
        [a, b, c, d] => fed_auth_token(payload, u32::from_le_bytes([*a, *b, *c, *d]) as usize)?,
        _ => None,
    };
    let password = Secret::new(utf16_to_string(&password_bytes)?);
    Ok(Login {
        tds_version,
        packet_size,
        host_name,
        user,
        password,
        app_name,
        server_name,
        database: (!database.is_empty()).then_some(database),
        access_token,
    })
}

/// Walks the FeatureExt block at `offset` for a FEDAUTH security token.
fn fed_auth_token(payload: &[u8], offset: usize) -> Result<Option<Secret>, Malformed> {
    let mut r = Reader::at(payload, offset);
    loop {
        let feature = r.u8()?;
        if feature == FEATURE_TERMINATOR {
            return Ok(None);
        }
        let len = r.u32()? as usize;
        let data = r.bytes(len)?;
        if feature == FEATURE_FEDAUTH {
            let mut d = Reader::new(data);
            if d.u8()? >> 1 != FEDAUTH_SECURITY_TOKEN {
                return Err(malformed("FEDAUTH without a security token"));
            }
            let token_len = d.u32()? as usize;
            let token = utf16_to_string(d.bytes(token_len)?)?;
            return Ok(Some(Secret::new(token)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LOGIN7 built the way clients build it (user "sa", password "Pw1!", database "db").
    fn login7(token: Option<&str>) -> Vec<u8> {
        let utf16 = |s: &str| {
            s.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>()
        };
        let obfuscate = |b: u8| b.rotate_left(4) ^ 0xA5;
        let strings: [Vec<u8>; 9] = [
            utf16("host"),
            utf16("sa"),
            utf16("Pw1!").into_iter().map(obfuscate).collect(),
            utf16("app"),
            utf16("srv"),
            Vec::new(), // extension, filled below
            Vec::new(),
            Vec::new(),
            utf16("db"),
        ];
        let mut fixed = vec![0u8; 36];
        fixed[4..8].copy_from_slice(&0x7400_0004u32.to_le_bytes());
        fixed[8..12].copy_from_slice(&4096u32.to_le_bytes());
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for (i, s) in strings.iter().enumerate() {
            let offset = FIXED_LEN + data.len();
            let (len, bytes) = if i == 5 && token.is_some() {
                (4u16, Vec::from(0u32.to_le_bytes())) // patched below
            } else {
                ((s.len() / 2) as u16, s.clone())
            };
            offsets.extend_from_slice(&(offset as u16).to_le_bytes());
            offsets.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(&bytes);
        }
        offsets.extend_from_slice(&[0u8; 6 + 3 * 4 + 4]); // client id, sspi, attach, change pw, sspi long
        assert_eq!(fixed.len() + offsets.len(), FIXED_LEN);
        let mut out = [fixed, offsets, data].concat();
        if let Some(token) = token {
            let ext_at = usize::from(u16::from_le_bytes([out[56], out[57]]));
            let feature_at = out.len() as u32;
            out[ext_at..ext_at + 4].copy_from_slice(&feature_at.to_le_bytes());
            let tok = utf16(token);
            out.push(FEATURE_FEDAUTH);
            out.extend_from_slice(&(1 + 4 + tok.len() as u32).to_le_bytes());
            out.push(FEDAUTH_SECURITY_TOKEN << 1);
            out.extend_from_slice(&(tok.len() as u32).to_le_bytes());
            out.extend_from_slice(&tok);
            out.push(FEATURE_TERMINATOR);
        }
        let len = out.len() as u32;
        out[..4].copy_from_slice(&len.to_le_bytes());
        out
    }

    #[test]
    fn tds_login7_gives_user_clear_password_database_and_token() {
        let login = parse(&login7(Some("eyJ0oken"))).unwrap();
        assert_eq!(
            (login.user.as_str(), login.password.expose()),
            ("sa", "Pw1!")
        );
        assert_eq!(login.database.as_deref(), Some("db"));
        assert_eq!(
            login.access_token.as_ref().map(Secret::expose),
            Some("eyJ0oken")
        );
        assert_eq!((login.packet_size, login.tds_version), (4096, 0x7400_0004));
        let shown = format!("{login:?}");
        assert!(
            !shown.contains("Pw1!") && !shown.contains("eyJ0oken"),
            "{shown}"
        );
        assert!(parse(&login7(None)).unwrap().access_token.is_none());
    }

    #[test]
    fn tds_truncated_login7_is_an_error() {
        let wire = login7(Some("tok"));
        for cut in 0..wire.len() - 1 {
            assert!(parse(&wire[..cut]).is_err(), "cut at {cut}");
        }
    }
}
