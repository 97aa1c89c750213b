//! The database master key password: the user's, checked against SQL Server's password policy,
//! or one generated from the operating system's cryptographic RNG.
//!
//! The password is a [`Secret`] from the moment it exists: `Debug` shows `Secret(***)`, it has no
//! `Display` and no `Serialize`, and [`crate::tsql::create_master_key`] shows it redacted in every
//! form but the text sent to the server. [`PasswordError`] never carries it.

use crate::secret::Secret;

/// Length of a generated password.
pub const GENERATED_LENGTH: usize = 32;

/// The shortest password SQL Server's policy (Windows complexity rules) accepts.
pub const MIN_LENGTH: usize = 8;

/// The longest password `CREATE MASTER KEY` accepts (sysname).
pub const MAX_LENGTH: usize = 128;

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGIT: &[u8] = b"23456789";
/// Symbols that need no escaping in a T-SQL literal, a connection string or a shell: no quotes,
/// brackets, backslash, semicolon, braces or whitespace.
const SYMBOL: &[u8] = b"!#$%*+-=?@^_~";

/// Why no master key password could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The operating system's RNG failed.
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
    /// The given password is shorter than the policy allows.
    #[error(
        "the master key password has {length} characters; SQL Server's password policy needs at \
         least {MIN_LENGTH}"
    )]
    TooShort {
        /// Its length in characters.
        length: usize,
    },
    /// The given password is longer than `CREATE MASTER KEY` accepts.
    #[error("the master key password has {length} characters; at most {MAX_LENGTH} are accepted")]
    TooLong {
        /// Its length in characters.
        length: usize,
    },
    /// The given password mixes too few kinds of characters.
    #[error(
        "the master key password uses {found} of the 4 kinds of characters (upper case, lower \
         case, digits, symbols); SQL Server's password policy needs at least 3"
    )]
    TooSimple {
        /// How many kinds it uses.
        found: usize,
    },
    /// The given password contains a control character (NUL, newline, …).
    #[error("the master key password contains a control character")]
    ControlCharacter,
}

/// The master key password to use: `given` when it meets SQL Server's password policy, else a
/// new one from [`generate`] when none was given.
pub fn master_key_password(given: Option<Secret>) -> Result<Secret, PasswordError> {
    match given {
        Some(password) => {
            check_policy(&password)?;
            Ok(password)
        }
        None => generate(),
    }
}

/// Checks `password` against SQL Server's password policy (the Windows complexity rules
/// `CHECK_POLICY` applies): 8 to 128 characters, three of upper case, lower case, digits and
/// symbols, no control characters. Quotes are allowed: the builder doubles them.
pub fn check_policy(password: &Secret) -> Result<(), PasswordError> {
    let text = password.expose();
    let length = text.chars().count();
    if text.chars().any(char::is_control) {
        return Err(PasswordError::ControlCharacter);
    }
    if length < MIN_LENGTH {
        return Err(PasswordError::TooShort { length });
    }
    if length > MAX_LENGTH {
        return Err(PasswordError::TooLong { length });
    }
    let kinds = [
        text.chars().any(char::is_uppercase),
        text.chars().any(char::is_lowercase),
        text.chars().any(|c| c.is_ascii_digit()),
        text.chars().any(|c| !c.is_alphanumeric()),
    ];
    let found = kinds.iter().filter(|k| **k).count();
    if found < 3 {
        return Err(PasswordError::TooSimple { found });
    }
    Ok(())
}

/// A new password of [`GENERATED_LENGTH`] characters from the operating system's cryptographic
/// RNG, with at least one upper case letter, lower case letter, digit and symbol, and no
/// character that needs escaping in a T-SQL literal (nor look-alikes such as `O`/`0`, `l`/`1`).
pub fn generate() -> Result<Secret, PasswordError> {
    generate_with(|buf| getrandom::fill(buf).map_err(|e| PasswordError::Rng(e.to_string())))
}

/// [`generate`] with `fill` as the source of random bytes.
fn generate_with(
    mut fill: impl FnMut(&mut [u8]) -> Result<(), PasswordError>,
) -> Result<Secret, PasswordError> {
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    // One of each kind, the rest from all of them, then shuffled.
    let mut chars: Vec<u8> = Vec::with_capacity(GENERATED_LENGTH);
    for set in [UPPER, LOWER, DIGIT, SYMBOL] {
        chars.push(pick(set, &mut fill)?);
    }
    while chars.len() < GENERATED_LENGTH {
        chars.push(pick(&all, &mut fill)?);
    }
    // Fisher-Yates with unbiased indices.
    for i in (1..chars.len()).rev() {
        let j = below(i + 1, &mut fill)?;
        chars.swap(i, j);
    }
    Ok(Secret::new(String::from_utf8_lossy(&chars).into_owned()))
}

fn pick(
    set: &[u8],
    fill: &mut impl FnMut(&mut [u8]) -> Result<(), PasswordError>,
) -> Result<u8, PasswordError> {
    let index = below(set.len(), fill)?;
    set.get(index)
        .copied()
        .ok_or_else(|| PasswordError::Rng("index out of range".to_owned()))
}

/// A uniform index below `n` (1 ..= 256), by rejection sampling of single bytes.
fn below(
    n: usize,
    fill: &mut impl FnMut(&mut [u8]) -> Result<(), PasswordError>,
) -> Result<usize, PasswordError> {
    if n == 0 || n > 256 {
        return Err(PasswordError::Rng(format!("cannot pick below {n}")));
    }
    let limit = 256 - 256 % n;
    let mut byte = [0u8; 1];
    // A fair RNG returns a byte under the limit within a few tries; a broken one that keeps
    // answering above it is an error rather than a hang.
    for _ in 0..1024 {
        fill(&mut byte)?;
        let b = usize::from(byte[0]);
        if b < limit {
            return Ok(b % n);
        }
    }
    Err(PasswordError::Rng(
        "the random source keeps returning the same bytes".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> [bool; 4] {
        [
            s.bytes().any(|b| UPPER.contains(&b)),
            s.bytes().any(|b| LOWER.contains(&b)),
            s.bytes().any(|b| DIGIT.contains(&b)),
            s.bytes().any(|b| SYMBOL.contains(&b)),
        ]
    }

    #[test]
    fn generated_passwords_meet_the_policy_and_need_no_escaping() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let p = generate().unwrap();
            let text = p.expose();
            assert_eq!(text.len(), GENERATED_LENGTH);
            assert_eq!(kinds(text), [true; 4], "{text}");
            check_policy(&p).unwrap();
            for forbidden in ['\'', '"', '[', ']', '\\', ';', '{', '}', ' ', '`'] {
                assert!(!text.contains(forbidden), "{text}");
            }
            // The literal the builder writes is the password between N' and ', unchanged.
            assert_eq!(
                crate::tsql::quote_nstring(text),
                format!("N'{text}'"),
                "no escaping needed"
            );
            assert!(seen.insert(text.to_owned()), "a repeated password");
        }
    }

    #[test]
    fn a_given_password_is_kept_when_it_meets_the_policy() {
        let given = Secret::new("Str0ng!Passw0rd'quoted");
        assert_eq!(master_key_password(Some(given.clone())).unwrap(), given);
        assert_eq!(
            master_key_password(None).unwrap().expose().len(),
            GENERATED_LENGTH
        );
    }

    #[test]
    fn a_given_password_that_breaks_the_policy_is_refused_without_showing_it() {
        let cases = [
            ("Ab1!", PasswordError::TooShort { length: 4 }),
            ("alllowercase123", PasswordError::TooSimple { found: 2 }),
            ("NoDigitsOrSymbols", PasswordError::TooSimple { found: 2 }),
            ("Has\nNewline1!", PasswordError::ControlCharacter),
            (&"Aa1!".repeat(33), PasswordError::TooLong { length: 132 }),
        ];
        for (password, expected) in cases {
            let e = master_key_password(Some(Secret::new(password))).unwrap_err();
            assert_eq!(e, expected, "{password}");
            assert!(!e.to_string().contains(password));
            assert!(!format!("{e:?}").contains(password));
        }
        // Three kinds out of four are enough.
        check_policy(&Secret::new("lowercase-and-digits-1")).unwrap();
        check_policy(&Secret::new("UPPER-lower-symbols")).unwrap();
    }

    #[test]
    fn the_password_never_shows_in_debug_or_the_batch_text() {
        let p = generate().unwrap();
        let text = p.expose().to_owned();
        assert_eq!(format!("{p:?}"), "Secret(***)");
        let ctx = super::super::RenderContext::new(p);
        assert!(!format!("{ctx:?}").contains(&text));
        let batch = crate::tsql::create_master_key(&ctx.master_key_password);
        assert!(!batch.to_string().contains(&text));
        assert!(!format!("{batch:?}").contains(&text));
        assert!(!batch.display_sql().contains(&text));
        assert!(!serde_json::to_string(&batch).unwrap().contains(&text));
        assert!(batch.expose_sql().contains(&text));
    }

    #[test]
    fn index_sampling_is_unbiased_and_reports_a_failing_source() {
        // Bytes at or above the limit are thrown away: 250 and 255 for n = 10.
        let mut bytes = [255u8, 250, 7].into_iter();
        let mut fill = |buf: &mut [u8]| {
            buf[0] = bytes.next().unwrap_or(0);
            Ok(())
        };
        assert_eq!(below(10, &mut fill).unwrap(), 7);
        let mut stuck = |buf: &mut [u8]| {
            buf[0] = 255;
            Ok(())
        };
        assert!(matches!(below(10, &mut stuck), Err(PasswordError::Rng(_))));
        let failing = generate_with(|_| Err(PasswordError::Rng("no entropy".to_owned())));
        assert_eq!(
            failing.unwrap_err(),
            PasswordError::Rng("no entropy".to_owned())
        );
        // Every index of a 256-wide set is reachable in one try.
        let mut max = |buf: &mut [u8]| {
            buf[0] = 255;
            Ok(())
        };
        assert_eq!(below(256, &mut max).unwrap(), 255);
    }
}
