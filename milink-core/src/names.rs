//! Validated names and values: newtypes that can only hold what SQL Server and Azure accept.
//!
//! Every identifier that reaches a T-SQL builder or an ARM path goes through one of these types,
//! so a bad name is refused once, at the edge, with an error that names the violated rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The rule a rejected value broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameRule {
    /// The value is empty.
    Empty,
    /// A sysname holds at most 128 UTF-16 code units.
    TooLong {
        /// UTF-16 length of the rejected value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// NUL and other control characters are not accepted in names.
    ControlCharacter {
        /// Character index of the first offending character.
        position: usize,
    },
    /// An invisible formatting character (Unicode category Cf: zero-width space U+200B, the
    /// byte order mark U+FEFF, bidirectional overrides such as U+202E, …): a name holding one
    /// renders exactly like another name, or reversed, in reports and logs.
    InvisibleCharacter {
        /// Character index of the first offending character.
        position: usize,
        /// Its code point.
        code_point: u32,
    },
    /// Leading or trailing whitespace is silently trimmed by some tools, so it is refused.
    SurroundingWhitespace,
    /// Certificate names must not contain `\` (the MI link refuses them).
    Backslash,
    /// MultiDatabase link names are lowercase ASCII letters and hyphens only.
    MultiDatabaseLinkCharset {
        /// The first character that is not a lowercase letter or hyphen.
        found: char,
    },
    /// MultiDatabase link names must not start or end with a hyphen.
    MultiDatabaseLinkHyphenEdge,
    /// The ARM resource id does not have the managed instance shape.
    ResourceIdShape {
        /// What was expected at the point of failure.
        expected: &'static str,
    },
    /// The ARM resource id does not have the Arc-enabled SQL Server instance shape.
    ArcResourceIdShape {
        /// What was expected at the point of failure.
        expected: &'static str,
    },
    /// Not a decimal numeric(25,0) value.
    NotAnLsn,
    /// Not a `major.minor.build.revision` product version.
    NotAVersion,
    /// A value outside the set the service accepts.
    UnknownValue {
        /// The accepted spellings.
        accepted: &'static str,
    },
    /// Not an IP address or a DNS host name that SQL Server and the managed instance can resolve.
    NotAHost {
        /// What exactly is wrong.
        reason: &'static str,
    },
    /// Port 0 is not a listening port.
    ZeroPort,
    /// Not an endpoint or listener URL of the form `TCP://host:port`.
    NotATcpUrl {
        /// What exactly is wrong.
        reason: &'static str,
    },
    /// The name is given to two things that must each have their own (compared
    /// case-insensitively, as SQL Server's default collation does).
    Duplicate {
        /// Where the name appears twice.
        within: &'static str,
    },
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRule::Empty => f.write_str("must not be empty"),
            NameRule::TooLong { len, max } => {
                write!(f, "is {len} UTF-16 code units long; the limit is {max}")
            }
            NameRule::ControlCharacter { position } => {
                write!(f, "contains a control character at position {position}")
            }
            NameRule::InvisibleCharacter {
                position,
                code_point,
            } => write!(
                f,
                "contains the invisible formatting character U+{code_point:04X} at position \
                 {position}; it would make the name look like another one"
            ),
            NameRule::SurroundingWhitespace => f.write_str("must not start or end with whitespace"),
            NameRule::Backslash => f.write_str("must not contain a backslash"),
            NameRule::MultiDatabaseLinkCharset { found } => write!(
                f,
                "contains {found:?}; MultiDatabase link names are lowercase letters and hyphens only"
            ),
            NameRule::MultiDatabaseLinkHyphenEdge => {
                f.write_str("must not start or end with a hyphen (MultiDatabase link names)")
            }
            NameRule::ResourceIdShape { expected } => write!(
                f,
                "is not a managed instance resource id: expected {expected} \
                 (/subscriptions/{{id}}/resourceGroups/{{rg}}/providers/Microsoft.Sql/managedInstances/{{name}})"
            ),
            NameRule::ArcResourceIdShape { expected } => write!(
                f,
                "is not an Arc-enabled SQL Server instance resource id: expected {expected} \
                 (/subscriptions/{{id}}/resourceGroups/{{rg}}/providers/Microsoft.AzureArcData/sqlServerInstances/{{name}})"
            ),
            NameRule::NotAnLsn => {
                f.write_str("is not a log sequence number (a decimal numeric(25,0))")
            }
            NameRule::NotAVersion => f.write_str("is not a product version such as 16.0.4125.3"),
            NameRule::UnknownValue { accepted } => write!(f, "is not one of {accepted}"),
            NameRule::NotAHost { reason } => {
                write!(f, "is not an IP address or DNS host name: {reason}")
            }
            NameRule::ZeroPort => f.write_str("is port 0, which is not a listening port"),
            NameRule::NotATcpUrl { reason } => write!(
                f,
                "is not an endpoint URL of the form TCP://host:port (e.g. TCP://10.0.1.4:5022): \
                 {reason}"
            ),
            NameRule::Duplicate { within } => write!(
                f,
                "names two databases of {within} (names are compared case-insensitively): give \
                 each database once"
            ),
        }
    }
}

/// A value was refused by one of the validated types in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} {rule}")]
pub struct NameError {
    /// The type that refused the value, e.g. `DatabaseName`.
    pub kind: &'static str,
    /// The refused value, shortened to 200 characters.
    pub value: String,
    /// The violated rule.
    pub rule: NameRule,
}

impl NameError {
    /// A refusal of `value` by `kind` for breaking `rule`.
    pub fn new_public(kind: &'static str, value: &str, rule: NameRule) -> Self {
        NameError::new(kind, value, rule)
    }

    fn new(kind: &'static str, value: &str, rule: NameRule) -> Self {
        NameError {
            kind,
            value: value.chars().take(200).collect(),
            rule,
        }
    }
}

/// Maximum length of a `sysname` in UTF-16 code units.
pub const SYSNAME_MAX: usize = 128;

/// Whether `c` is a Unicode format character (general category Cf): invisible, or changing how
/// the text around it is ordered.
pub fn is_format_character(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

fn check_sysname(kind: &'static str, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::new(kind, value, NameRule::Empty));
    }
    let len = value.encode_utf16().count();
    if len > SYSNAME_MAX {
        return Err(NameError::new(
            kind,
            value,
            NameRule::TooLong {
                len,
                max: SYSNAME_MAX,
            },
        ));
    }
    if let Some(position) = value.chars().position(char::is_control) {
        return Err(NameError::new(
            kind,
            value,
            NameRule::ControlCharacter { position },
        ));
    }
    if let Some((position, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| is_format_character(*c))
    {
        return Err(NameError::new(
            kind,
            value,
            NameRule::InvisibleCharacter {
                position,
                code_point: u32::from(c),
            },
        ));
    }
    let starts = value.chars().next().is_some_and(char::is_whitespace);
    let ends = value.chars().next_back().is_some_and(char::is_whitespace);
    if starts || ends {
        return Err(NameError::new(kind, value, NameRule::SurroundingWhitespace));
    }
    Ok(())
}

macro_rules! sysname_type {
    ($(#[$meta:meta])* $name:ident, $extra:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                check_sysname(stringify!($name), &value)?;
                let extra: fn(&str) -> Result<(), NameRule> = $extra;
                extra(&value).map_err(|rule| NameError::new(stringify!($name), &value, rule))?;
                Ok($name(value))
            }

            /// The name as written, unquoted.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(s).map_err(serde::de::Error::custom)
            }
        }

        impl crate::tsql::SqlIdentifier for $name {
            fn ident(&self) -> &str {
                &self.0
            }
        }
    };
}

fn no_extra(_: &str) -> Result<(), NameRule> {
    Ok(())
}

sysname_type!(
    /// A user database name (sysname).
    DatabaseName,
    no_extra
);
sysname_type!(
    /// An availability group name (sysname), on SQL Server or on the managed instance.
    AgName,
    no_extra
);
sysname_type!(
    /// A link name: the distributed availability group's name and the ARM resource name.
    ///
    /// Any sysname is accepted; [`LinkName::check_mode`] adds the MultiDatabase rule.
    LinkName,
    no_extra
);
sysname_type!(
    /// A certificate name (sysname without `\`).
    CertificateName,
    |v| if v.contains('\\') { Err(NameRule::Backslash) } else { Ok(()) }
);
sysname_type!(
    /// A server name as `@@SERVERNAME` reports it (`HOST` or `HOST\INSTANCE`), or a host name.
    ServerName,
    no_extra
);
sysname_type!(
    /// The logical name of a database file (`sys.master_files.name`).
    LogicalFileName,
    no_extra
);

sysname_type!(
    /// A database mirroring endpoint name (sysname), e.g. `database_mirroring_endpoint`.
    EndpointName,
    no_extra
);

impl CertificateName {
    /// A name from a constant known to be valid (checked by a unit test).
    pub(crate) fn from_static(value: &'static str) -> Self {
        CertificateName(value.to_owned())
    }
}

/// Maximum length of a DNS name in characters (RFC 1035, without the trailing dot).
pub const DNS_NAME_MAX: usize = 253;
/// Maximum length of one DNS label.
pub const DNS_LABEL_MAX: usize = 63;

/// Checks a DNS host name: dot-separated labels of ASCII letters, digits and hyphens, each
/// 1..=63 characters and not starting or ending with a hyphen, at most `max` characters in
/// all, and not all-numeric in the last label (so `999.1.1.1` is not taken for a host name).
fn check_dns_name(value: &str, max: usize) -> Result<(), NameRule> {
    if value.is_empty() {
        return Err(NameRule::Empty);
    }
    let len = value.chars().count();
    if len > max {
        return Err(NameRule::NotAHost {
            reason: if max == DNS_NAME_MAX {
                "longer than 253 characters"
            } else {
                "longer than 128 characters (a certificate is named after it)"
            },
        });
    }
    let mut last = "";
    for label in value.split('.') {
        if label.is_empty() {
            return Err(NameRule::NotAHost {
                reason: "empty label (leading, trailing or doubled dot)",
            });
        }
        if label.len() > DNS_LABEL_MAX {
            return Err(NameRule::NotAHost {
                reason: "a label is longer than 63 characters",
            });
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(NameRule::NotAHost {
                reason: "labels hold only ASCII letters, digits and hyphens",
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameRule::NotAHost {
                reason: "a label starts or ends with a hyphen",
            });
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameRule::NotAHost {
            reason: "all-numeric last label (not a valid IPv4 address either)",
        });
    }
    Ok(())
}

/// A TCP port that a listener can use: 1..=65535. Port 0 cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TcpPort(u16);

impl TcpPort {
    /// The default database mirroring port, and the managed instance's fixed one: 5022.
    pub const MIRRORING_DEFAULT: TcpPort = TcpPort(5022);

    /// Validates `port` (refuses 0).
    pub fn new(port: u16) -> Result<Self, NameError> {
        if port == 0 {
            return Err(NameError::new("TcpPort", "0", NameRule::ZeroPort));
        }
        Ok(TcpPort(port))
    }

    /// The port number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for TcpPort {
    fn default() -> Self {
        TcpPort::MIRRORING_DEFAULT
    }
}

impl fmt::Display for TcpPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<u16> for TcpPort {
    type Error = NameError;
    fn try_from(port: u16) -> Result<Self, Self::Error> {
        TcpPort::new(port)
    }
}

impl<'de> Deserialize<'de> for TcpPort {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TcpPort::new(u16::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The network address of a database mirroring endpoint as the other side must resolve it:
/// an IPv4 address, an IPv6 address, or a DNS host name.
///
/// Validation is strict so the value can sit in an `ENDPOINT_URL` / `LISTENER_URL` without
/// surprises: DNS names are dot-separated labels of ASCII letters, digits and hyphens
/// (1..=253 characters, labels 1..=63, no hyphen at a label's edge, no trailing dot; use
/// punycode for internationalized names); IP addresses must parse (IPv6 may be given with or
/// without brackets, and is stored without them). Spaces, quotes, `;`, `[`, `]`, `/`, `%`
/// (IPv6 zone ids) and `:` outside an IPv6 address are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointHost {
    host: String,
    kind: HostKind,
}

/// What kind of address an [`EndpointHost`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// An IPv6 address (stored without brackets).
    Ipv6,
    /// A DNS host name.
    Dns,
}

impl EndpointHost {
    /// Validates `value` as an IP address or DNS host name.
    pub fn new(value: impl AsRef<str>) -> Result<Self, NameError> {
        let value = value.as_ref();
        let err = |rule| NameError::new("EndpointHost", value, rule);
        if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            return match inner.parse::<std::net::Ipv6Addr>() {
                Ok(ip) => Ok(EndpointHost {
                    host: ip.to_string(),
                    kind: HostKind::Ipv6,
                }),
                Err(_) => Err(err(NameRule::NotAHost {
                    reason: "brackets hold only an IPv6 address",
                })),
            };
        }
        if let Ok(ip) = value.parse::<std::net::Ipv4Addr>() {
            return Ok(EndpointHost {
                host: ip.to_string(),
                kind: HostKind::Ipv4,
            });
        }
        if let Ok(ip) = value.parse::<std::net::Ipv6Addr>() {
            return Ok(EndpointHost {
                host: ip.to_string(),
                kind: HostKind::Ipv6,
            });
        }
        if value.contains(':') {
            return Err(err(NameRule::NotAHost {
                reason: "':' is allowed only in an IPv6 address (give the port separately)",
            }));
        }
        check_dns_name(value, DNS_NAME_MAX).map_err(err)?;
        Ok(EndpointHost {
            host: value.to_owned(),
            kind: HostKind::Dns,
        })
    }

    /// The host as written (IPv6 without brackets, in canonical form).
    pub fn as_str(&self) -> &str {
        &self.host
    }

    /// What kind of address this is.
    pub fn kind(&self) -> HostKind {
        self.kind
    }

    /// The endpoint URL SQL Server expects: `TCP://host:port`, an IPv6 address in brackets.
    pub fn tcp_url(&self, port: TcpPort) -> String {
        match self.kind {
            HostKind::Ipv6 => format!("TCP://[{}]:{}", self.host, port),
            HostKind::Ipv4 | HostKind::Dns => format!("TCP://{}:{}", self.host, port),
        }
    }
}

/// Reads an endpoint or listener URL: `TCP://host:port` (the scheme in any case, an IPv6 host in
/// brackets), the form [`EndpointHost::tcp_url`] writes; anything else is refused with the form
/// expected.
pub fn parse_tcp_url(url: &str) -> Result<(EndpointHost, TcpPort), NameError> {
    let refuse =
        |reason: &'static str| NameError::new("endpoint URL", url, NameRule::NotATcpUrl { reason });
    let rest = url
        .get(..6)
        .filter(|scheme| scheme.eq_ignore_ascii_case("tcp://"))
        .and_then(|_| url.get(6..))
        .ok_or_else(|| refuse("it does not start with TCP://"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| refuse("it has no :port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| refuse("its port is not a number from 1 to 65535"))?;
    let port = TcpPort::new(port)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = EndpointHost::new(host).map_err(|e| NameError::new("endpoint URL", url, e.rule))?;
    Ok((host, port))
}

impl fmt::Display for EndpointHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)
    }
}

impl FromStr for EndpointHost {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndpointHost::new(s)
    }
}

impl Serialize for EndpointHost {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.host)
    }
}

impl<'de> Deserialize<'de> for EndpointHost {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EndpointHost::new(s).map_err(serde::de::Error::custom)
    }
}

/// The fully qualified domain name of a managed instance, typically
/// `<mi-name>.<dns-zone>.database.windows.net`; any valid DNS name is accepted.
///
/// SQL Server must hold the managed instance's endpoint certificate under exactly this name
/// (milink-facts §1.4 d), so the name is limited to 128 characters (a sysname) and converts
/// to a [`CertificateName`] without failing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MiFqdn(String);

impl MiFqdn {
    /// Validates `value` as a DNS name of at most 128 characters.
    pub fn new(value: impl AsRef<str>) -> Result<Self, NameError> {
        let value = value.as_ref();
        check_dns_name(value, SYSNAME_MAX).map_err(|rule| NameError::new("MiFqdn", value, rule))?;
        Ok(MiFqdn(value.to_owned()))
    }

    /// The FQDN as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The managed instance name: the first label (`tailspin-mi` in
    /// `tailspin-mi.abc123.database.windows.net`).
    pub fn instance_name(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }

    /// The name SQL Server must give the managed instance's endpoint certificate: the FQDN.
    pub fn certificate_name(&self) -> CertificateName {
        CertificateName(self.0.clone())
    }

    /// The FQDN as an endpoint host (for `TCP://<fqdn>:5022`).
    pub fn host(&self) -> EndpointHost {
        EndpointHost {
            host: self.0.clone(),
            kind: HostKind::Dns,
        }
    }
}

impl From<&MiFqdn> for CertificateName {
    fn from(fqdn: &MiFqdn) -> Self {
        fqdn.certificate_name()
    }
}

impl From<MiFqdn> for CertificateName {
    fn from(fqdn: MiFqdn) -> Self {
        CertificateName(fqdn.0)
    }
}

impl fmt::Display for MiFqdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MiFqdn {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MiFqdn::new(s)
    }
}

impl Serialize for MiFqdn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MiFqdn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MiFqdn::new(s).map_err(serde::de::Error::custom)
    }
}

/// How many databases one link carries (REST `linkMode`, 2025-08-01-preview).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum LinkMode {
    /// One database per availability group per link (the only mode before 2025-08-01-preview).
    #[default]
    SingleDatabase,
    /// All databases of the availability group (preview; SQL Server 2022 CU27+ / 2025 CU9+).
    MultiDatabase,
}

impl LinkName {
    /// Checks the extra rule a link mode puts on the name: MultiDatabase link names are lowercase
    /// ASCII letters and hyphens, without a leading or trailing hyphen.
    pub fn check_mode(&self, mode: LinkMode) -> Result<(), NameError> {
        if mode == LinkMode::SingleDatabase {
            return Ok(());
        }
        if let Some(found) = self
            .0
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || *c == '-'))
        {
            return Err(NameError::new(
                "LinkName",
                &self.0,
                NameRule::MultiDatabaseLinkCharset { found },
            ));
        }
        if self.0.starts_with('-') || self.0.ends_with('-') {
            return Err(NameError::new(
                "LinkName",
                &self.0,
                NameRule::MultiDatabaseLinkHyphenEdge,
            ));
        }
        Ok(())
    }

    /// Validates `value` as a link name for `mode`.
    pub fn for_mode(value: impl Into<String>, mode: LinkMode) -> Result<Self, NameError> {
        let name = LinkName::new(value)?;
        name.check_mode(mode)?;
        Ok(name)
    }
}

/// The shape of a top-level ARM resource id that [`parse_resource_id`] checks.
pub(crate) struct ResourceIdShape {
    /// The type that refuses a value, e.g. `InstanceId`.
    pub(crate) kind: &'static str,
    /// The provider segment, e.g. `Microsoft.Sql`.
    pub(crate) provider: &'static str,
    /// What a wrong provider is told.
    pub(crate) provider_expected: &'static str,
    /// The resource type segment, e.g. `managedInstances`.
    pub(crate) resource_type: &'static str,
    /// What a wrong resource type is told.
    pub(crate) type_expected: &'static str,
    /// What empty parts are told.
    pub(crate) name_expected: &'static str,
    /// The rule a refusal names.
    pub(crate) rule: fn(&'static str) -> NameRule,
}

/// Parses `/subscriptions/{id}/resourceGroups/{rg}/providers/{provider}/{type}/{name}` into its
/// subscription, resource group and name. The fixed segments are matched case-insensitively, as
/// ARM does; a trailing `/` is accepted; the variable ones must be non-empty and free of
/// whitespace, control characters, `?` and `#`.
pub(crate) fn parse_resource_id(
    value: &str,
    shape: ResourceIdShape,
) -> Result<[String; 3], NameError> {
    let err = |expected| NameError::new(shape.kind, value, (shape.rule)(expected));
    let trimmed = value.strip_suffix('/').unwrap_or(value);
    let rest = trimmed
        .strip_prefix('/')
        .ok_or_else(|| err("a leading '/'"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let fixed: [(usize, &str, &'static str); 4] = [
        (0, "subscriptions", "'subscriptions' as the first segment"),
        (2, "resourceGroups", "'resourceGroups' as the third segment"),
        (4, "providers", "'providers' as the fifth segment"),
        (6, shape.resource_type, shape.type_expected),
    ];
    if parts.len() != 8 {
        return Err(err("exactly eight segments"));
    }
    for (index, word, expected) in fixed {
        if !parts[index].eq_ignore_ascii_case(word) {
            return Err(err(expected));
        }
    }
    if !parts[5].eq_ignore_ascii_case(shape.provider) {
        return Err(err(shape.provider_expected));
    }
    let (sub, rg, name) = (parts[1], parts[3], parts[7]);
    if sub.is_empty() || rg.is_empty() || name.is_empty() {
        return Err(err(shape.name_expected));
    }
    let bad_char = |s: &str| {
        s.chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#')
    };
    if bad_char(sub) || bad_char(rg) || bad_char(name) {
        return Err(err(
            "segments without whitespace, control characters, '?' or '#'",
        ));
    }
    Ok([sub.to_owned(), rg.to_owned(), name.to_owned()])
}

/// The ARM resource id of a managed instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceId {
    subscription_id: String,
    resource_group: String,
    name: String,
}

impl InstanceId {
    /// Parses `/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.Sql/managedInstances/{name}`.
    ///
    /// The fixed segments are matched case-insensitively, as ARM does; a trailing `/` is accepted.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let [sub, rg, name] = parse_resource_id(
            value,
            ResourceIdShape {
                kind: "InstanceId",
                provider: "Microsoft.Sql",
                provider_expected: "the provider 'Microsoft.Sql'",
                resource_type: "managedInstances",
                type_expected: "'managedInstances' as the seventh segment",
                name_expected: "non-empty subscription, resource group and instance name",
                rule: |expected| NameRule::ResourceIdShape { expected },
            },
        )?;
        Ok(InstanceId {
            subscription_id: sub,
            resource_group: rg,
            name,
        })
    }

    /// Builds an id from its parts (each validated as a path segment).
    pub fn from_parts(
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Self, NameError> {
        InstanceId::parse(&format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Sql/managedInstances/{name}"
        ))
    }

    /// The subscription id.
    pub fn subscription_id(&self) -> &str {
        &self.subscription_id
    }
    /// The resource group.
    pub fn resource_group(&self) -> &str {
        &self.resource_group
    }
    /// The managed instance name (the first label of its FQDN).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/managedInstances/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
}

impl FromStr for InstanceId {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstanceId::parse(s)
    }
}

impl Serialize for InstanceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        InstanceId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A log sequence number as SQL Server exposes it in the HADR DMVs and the REST API:
/// numeric(25,0), compared as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(u128);

impl Lsn {
    /// The largest numeric(25,0) value.
    pub const MAX: Lsn = Lsn(9_999_999_999_999_999_999_999_999);

    /// Wraps a value; refuses values beyond numeric(25,0).
    pub fn new(value: u128) -> Result<Self, NameError> {
        if value > Lsn::MAX.0 {
            return Err(NameError::new(
                "Lsn",
                &value.to_string(),
                NameRule::NotAnLsn,
            ));
        }
        Ok(Lsn(value))
    }

    /// The numeric value.
    pub fn value(self) -> u128 {
        self.0
    }

    /// Parses a decimal string as the REST API returns it (`"71000009408100001"`). A DMV value
    /// rendered with a `.0` scale suffix or surrounding spaces is accepted too.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let err = || NameError::new("Lsn", value, NameRule::NotAnLsn);
        let trimmed = value.trim();
        let digits = trimmed.strip_suffix(".0").unwrap_or(trimmed);
        if digits.is_empty() || digits.len() > 25 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let n: u128 = digits.parse().map_err(|_| err())?;
        Lsn::new(n).map_err(|_| err())
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Lsn {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lsn::parse(s)
    }
}

impl Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => Lsn::parse(&s).map_err(serde::de::Error::custom),
            Raw::Number(n) => Ok(Lsn(u128::from(n))),
        }
    }
}

/// A SQL Server product version, as `SERVERPROPERTY('ProductVersion')` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SqlVersion {
    /// Major version: 13 (2016), 14 (2017), 15 (2019), 16 (2022), 17 (2025).
    pub major: u16,
    /// Minor version (0 for all releases the link supports).
    pub minor: u16,
    /// Build number, which identifies the CU.
    pub build: u32,
    /// Revision.
    pub revision: u32,
}

impl SqlVersion {
    /// A version from its four parts.
    pub const fn new(major: u16, minor: u16, build: u32, revision: u32) -> Self {
        SqlVersion {
            major,
            minor,
            build,
            revision,
        }
    }

    /// Parses `16.0.4125.3`. Three parts are accepted (revision 0).
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let err = || NameError::new("SqlVersion", value, NameRule::NotAVersion);
        let parts: Vec<&str> = value.trim().split('.').collect();
        if !(3..=4).contains(&parts.len()) {
            return Err(err());
        }
        let num = |s: &str| -> Result<u32, NameError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            s.parse::<u32>().map_err(|_| err())
        };
        let major = u16::try_from(num(parts[0])?).map_err(|_| err())?;
        let minor = u16::try_from(num(parts[1])?).map_err(|_| err())?;
        let build = num(parts[2])?;
        let revision = match parts.get(3) {
            Some(p) => num(p)?,
            None => 0,
        };
        Ok(SqlVersion::new(major, minor, build, revision))
    }

    /// The marketing name of the major version, e.g. "SQL Server 2022".
    pub fn release_name(&self) -> &'static str {
        match self.major {
            17 => "SQL Server 2025",
            16 => "SQL Server 2022",
            15 => "SQL Server 2019",
            14 => "SQL Server 2017",
            13 => "SQL Server 2016",
            0..=12 => "SQL Server 2014 or earlier",
            _ => "a SQL Server release newer than 2025",
        }
    }

    /// What this build can do with the MI link (milink-facts §1.1).
    pub fn capabilities(&self) -> Capabilities {
        let at_least = |v: SqlVersion| *self >= v;
        match self.major {
            17 => Capabilities {
                link_supported: at_least(SqlVersion::new(17, 0, 1000, 7)),
                minimum_build: Some(SqlVersion::new(17, 0, 1000, 7)),
                two_way: true,
                mi_initial_primary: at_least(SqlVersion::new(17, 0, 1000, 7)),
                tsql_failover: at_least(SqlVersion::new(17, 0, 1000, 7)),
                azure_connect_pack: None,
                wsfc_required: false,
                cluster_type_none: true,
                matching_update_policy: Some(UpdatePolicy::SqlServer2025),
            },
            16 => Capabilities {
                link_supported: at_least(SqlVersion::new(16, 0, 1000, 6)),
                minimum_build: Some(SqlVersion::new(16, 0, 1000, 6)),
                two_way: true,
                mi_initial_primary: at_least(SqlVersion::new(16, 0, 4095, 4)),
                tsql_failover: at_least(SqlVersion::new(16, 0, 4125, 3)),
                azure_connect_pack: None,
                wsfc_required: false,
                cluster_type_none: true,
                matching_update_policy: Some(UpdatePolicy::SqlServer2022),
            },
            15 => Capabilities {
                link_supported: at_least(SqlVersion::new(15, 0, 4312, 2)),
                minimum_build: Some(SqlVersion::new(15, 0, 4312, 2)),
                cluster_type_none: true,
                ..Capabilities::none()
            },
            14 => Capabilities {
                link_supported: at_least(SqlVersion::new(14, 0, 3456, 2)),
                minimum_build: Some(SqlVersion::new(14, 0, 3456, 2)),
                azure_connect_pack: Some(SqlVersion::new(14, 0, 3490, 10)),
                cluster_type_none: true,
                ..Capabilities::none()
            },
            13 => Capabilities {
                link_supported: at_least(SqlVersion::new(13, 0, 6300, 2)),
                minimum_build: Some(SqlVersion::new(13, 0, 6300, 2)),
                azure_connect_pack: Some(SqlVersion::new(13, 0, 7000, 253)),
                wsfc_required: true,
                cluster_type_none: false,
                ..Capabilities::none()
            },
            _ => Capabilities::none(),
        }
    }
}

impl fmt::Display for SqlVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.build, self.revision
        )
    }
}

impl FromStr for SqlVersion {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SqlVersion::parse(s)
    }
}

impl Serialize for SqlVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SqlVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SqlVersion::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The MI link capability matrix of one SQL Server build (milink-facts §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The build is at or above the minimum for the link.
    pub link_supported: bool,
    /// The minimum build for this major version, if the major version supports the link at all.
    pub minimum_build: Option<SqlVersion>,
    /// Failback MI → SQL Server keeps the link (2022, 2025); otherwise failover is one-way.
    pub two_way: bool,
    /// A link can be created with the managed instance as the initial primary (2022 CU10+, 2025).
    pub mi_initial_primary: bool,
    /// `ALTER AVAILABILITY GROUP … FAILOVER` works on the DAG (2022 CU13+, 2025).
    pub tsql_failover: bool,
    /// The Azure Connect pack build that must be installed (2016, 2017), if any.
    pub azure_connect_pack: Option<SqlVersion>,
    /// Always On needs a Windows Server Failover Cluster (2016).
    pub wsfc_required: bool,
    /// `CLUSTER_TYPE = NONE` is valid in `CREATE AVAILABILITY GROUP` (not on 2016).
    pub cluster_type_none: bool,
    /// The MI update policy that allows failback and MI-to-SQL Server replication, if any.
    pub matching_update_policy: Option<UpdatePolicy>,
}

impl Capabilities {
    /// A build that supports nothing.
    pub const fn none() -> Self {
        Capabilities {
            link_supported: false,
            minimum_build: None,
            two_way: false,
            mi_initial_primary: false,
            tsql_failover: false,
            azure_connect_pack: None,
            wsfc_required: false,
            cluster_type_none: false,
            matching_update_policy: None,
        }
    }

    /// Whether failback from the managed instance to this SQL Server is allowed under `policy`.
    pub fn failback_allowed_with(&self, policy: UpdatePolicy) -> bool {
        self.two_way && self.matching_update_policy == Some(policy)
    }
}

/// The managed instance update policy (ARM `databaseFormat`, milink-facts §1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum UpdatePolicy {
    /// "SQL Server 2022" policy (`SQLServer2022`).
    #[serde(rename = "SQLServer2022")]
    SqlServer2022,
    /// "SQL Server 2025" policy. The REST spelling is unverified; both `SQLServer2025` and
    /// `SqlServer2025` are read.
    #[serde(rename = "SQLServer2025")]
    SqlServer2025,
    /// "Always-up-to-date" (`AlwaysUpToDate`): never replicates back to SQL Server.
    AlwaysUpToDate,
}

impl UpdatePolicy {
    /// Parses an ARM `databaseFormat` value, case-insensitively.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        match value.to_ascii_lowercase().as_str() {
            "sqlserver2022" => Ok(UpdatePolicy::SqlServer2022),
            "sqlserver2025" => Ok(UpdatePolicy::SqlServer2025),
            "alwaysuptodate" => Ok(UpdatePolicy::AlwaysUpToDate),
            _ => Err(NameError::new(
                "UpdatePolicy",
                value,
                NameRule::UnknownValue {
                    accepted: "SQLServer2022, SQLServer2025, AlwaysUpToDate",
                },
            )),
        }
    }
}

impl fmt::Display for UpdatePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpdatePolicy::SqlServer2022 => "SQLServer2022",
            UpdatePolicy::SqlServer2025 => "SQLServer2025",
            UpdatePolicy::AlwaysUpToDate => "AlwaysUpToDate",
        })
    }
}

impl<'de> Deserialize<'de> for UpdatePolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UpdatePolicy::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysname_rules_each_refuse_with_their_rule() {
        assert_eq!(DatabaseName::new("").unwrap_err().rule, NameRule::Empty);
        let long = "x".repeat(129);
        assert!(matches!(
            DatabaseName::new(long).unwrap_err().rule,
            NameRule::TooLong { len: 129, max: 128 }
        ));
        assert!(DatabaseName::new("x".repeat(128)).is_ok());
        // 64 astral characters are 128 UTF-16 units: allowed; 65 are not.
        assert!(DatabaseName::new("😀".repeat(64)).is_ok());
        assert!(DatabaseName::new("😀".repeat(65)).is_err());
        assert_eq!(
            AgName::new("a\u{0}b").unwrap_err().rule,
            NameRule::ControlCharacter { position: 1 }
        );
        assert_eq!(
            AgName::new("ab\n").unwrap_err().rule,
            NameRule::ControlCharacter { position: 2 }
        );
        // Invisible formatting characters: the name would render as another one (or reversed).
        for (value, position, code_point) in [
            ("Toy\u{200B}Store", 3, 0x200B),
            ("\u{FEFF}ToyStore", 0, 0xFEFF),
            ("ToyStore\u{202E}erots", 8, 0x202E),
            ("Toy\u{2066}Store", 3, 0x2066),
            ("Toy\u{00AD}Store", 3, 0x00AD),
        ] {
            let err = DatabaseName::new(value).unwrap_err();
            assert_eq!(
                err.rule,
                NameRule::InvisibleCharacter {
                    position,
                    code_point
                },
                "{value:?}"
            );
            assert!(
                err.to_string()
                    .contains("invisible formatting character U+"),
                "{err}"
            );
        }
        assert!(DatabaseName::new("Tóy Störe ☃").is_ok());
        assert_eq!(
            ServerName::new(" TailspinSql").unwrap_err().rule,
            NameRule::SurroundingWhitespace
        );
        assert_eq!(
            ServerName::new("TailspinSql\u{3000}").unwrap_err().rule,
            NameRule::SurroundingWhitespace
        );
        assert!(ServerName::new("HOST\\INSTANCE").is_ok());
        assert_eq!(
            CertificateName::new("Cert_HOST\\I_endpoint")
                .unwrap_err()
                .rule,
            NameRule::Backslash
        );
        assert!(DatabaseName::new("Toy]Store' --").is_ok());
    }

    #[test]
    fn error_message_names_type_value_and_rule() {
        let e = CertificateName::new("a\\b").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"CertificateName "a\\b" must not contain a backslash"#
        );
    }

    #[test]
    fn names_refuse_bad_values_when_deserialized() {
        assert!(serde_json::from_str::<DatabaseName>("\"ToyStore\"").is_ok());
        assert!(serde_json::from_str::<DatabaseName>("\"\"").is_err());
    }

    #[test]
    fn multi_database_link_names() {
        assert!(LinkName::for_mode("toystore-link", LinkMode::MultiDatabase).is_ok());
        assert!(LinkName::for_mode("ToyStore_Link", LinkMode::SingleDatabase).is_ok());
        assert_eq!(
            LinkName::for_mode("ToyStore", LinkMode::MultiDatabase)
                .unwrap_err()
                .rule,
            NameRule::MultiDatabaseLinkCharset { found: 'T' }
        );
        assert_eq!(
            LinkName::for_mode("link1", LinkMode::MultiDatabase)
                .unwrap_err()
                .rule,
            NameRule::MultiDatabaseLinkCharset { found: '1' }
        );
        assert_eq!(
            LinkName::for_mode("-link", LinkMode::MultiDatabase)
                .unwrap_err()
                .rule,
            NameRule::MultiDatabaseLinkHyphenEdge
        );
        assert_eq!(
            LinkName::for_mode("link-", LinkMode::MultiDatabase)
                .unwrap_err()
                .rule,
            NameRule::MultiDatabaseLinkHyphenEdge
        );
    }

    #[test]
    fn instance_id_parses_case_insensitively_and_round_trips() {
        let raw = "/SUBSCRIPTIONS/00000000-1111-2222-3333-444444444444/resourcegroups/rg-tailspin/PROVIDERS/microsoft.sql/MANAGEDINSTANCES/tailspin-mi/";
        let id = InstanceId::parse(raw).unwrap();
        assert_eq!(id.subscription_id(), "00000000-1111-2222-3333-444444444444");
        assert_eq!(id.resource_group(), "rg-tailspin");
        assert_eq!(id.name(), "tailspin-mi");
        let canonical = id.to_string();
        assert_eq!(
            canonical,
            "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-tailspin/providers/Microsoft.Sql/managedInstances/tailspin-mi"
        );
        assert_eq!(InstanceId::parse(&canonical).unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<InstanceId>(&json).unwrap(), id);
    }

    #[test]
    fn instance_id_refuses_other_shapes() {
        for bad in [
            "",
            "subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/mi",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/managedInstances/mi",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi/databases/db",
            "/subscriptions//resourceGroups/rg/providers/Microsoft.Sql/managedInstances/mi",
            "/subscriptions/s/resourceGroups/r g/providers/Microsoft.Sql/managedInstances/mi",
        ] {
            assert!(InstanceId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn lsn_parses_rest_and_dmv_forms_and_orders_numerically() {
        let a = Lsn::parse("71000009408100001").unwrap();
        let b = Lsn::parse("9408100001").unwrap();
        assert!(b < a, "numeric, not lexicographic order");
        assert_eq!(Lsn::parse(" 42.0 ").unwrap().value(), 42);
        assert_eq!(Lsn::parse("9999999999999999999999999").unwrap(), Lsn::MAX);
        assert!(Lsn::parse("10000000000000000000000000").is_err());
        assert!(Lsn::parse("-1").is_err());
        assert!(Lsn::parse("1e5").is_err());
        assert!(Lsn::parse("").is_err());
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"71000009408100001\"");
        assert_eq!(
            serde_json::from_str::<Lsn>("\"71000009408100001\"").unwrap(),
            a
        );
        assert_eq!(serde_json::from_str::<Lsn>("17").unwrap().value(), 17);
    }

    #[test]
    fn version_parse_and_order() {
        let v = SqlVersion::parse("16.0.4125.3").unwrap();
        assert_eq!(v, SqlVersion::new(16, 0, 4125, 3));
        assert!(SqlVersion::parse("16.0.4095.4").unwrap() < v);
        assert!(
            SqlVersion::parse("16.0.10000.1").unwrap() > v,
            "numeric build compare"
        );
        assert_eq!(SqlVersion::parse("15.0.4312").unwrap().revision, 0);
        for bad in [
            "",
            "16",
            "16.0",
            "16.0.x.1",
            "16.0.1.2.3",
            "Microsoft SQL Server 2022",
        ] {
            assert!(SqlVersion::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(v.to_string(), "16.0.4125.3");
    }

    #[test]
    fn capability_matrix_follows_the_facts() {
        let caps = |s: &str| SqlVersion::parse(s).unwrap().capabilities();
        // 2022 RTM: link yes, MI-initial no, T-SQL failover no.
        let rtm = caps("16.0.1000.6");
        assert!(rtm.link_supported && rtm.two_way && !rtm.mi_initial_primary && !rtm.tsql_failover);
        // 2022 CU10: MI-initial primary.
        let cu10 = caps("16.0.4095.4");
        assert!(cu10.mi_initial_primary && !cu10.tsql_failover);
        // 2022 CU13: T-SQL failover.
        assert!(caps("16.0.4125.3").tsql_failover);
        assert!(!caps("16.0.999.1").link_supported);
        // 2025.
        let v25 = caps("17.0.1000.7");
        assert!(v25.link_supported && v25.two_way && v25.tsql_failover);
        assert_eq!(
            v25.matching_update_policy,
            Some(UpdatePolicy::SqlServer2025)
        );
        // 2019: one way.
        let v19 = caps("15.0.4312.2");
        assert!(v19.link_supported && !v19.two_way && !v19.tsql_failover);
        assert!(!caps("15.0.4311.9").link_supported);
        // 2017 and 2016 need the Azure Connect pack; 2016 needs a WSFC and no CLUSTER_TYPE.
        assert_eq!(
            caps("14.0.3456.2").azure_connect_pack,
            Some(SqlVersion::new(14, 0, 3490, 10))
        );
        let v16 = caps("13.0.6300.2");
        assert!(v16.link_supported && v16.wsfc_required && !v16.cluster_type_none);
        assert!(!caps("12.0.6024.0").link_supported);
        assert!(!caps("18.0.1.1").link_supported);
    }

    #[test]
    fn failback_needs_two_way_and_the_matching_policy() {
        let v22 = SqlVersion::parse("16.0.4125.3").unwrap().capabilities();
        assert!(v22.failback_allowed_with(UpdatePolicy::SqlServer2022));
        assert!(!v22.failback_allowed_with(UpdatePolicy::SqlServer2025));
        assert!(!v22.failback_allowed_with(UpdatePolicy::AlwaysUpToDate));
        let v25 = SqlVersion::parse("17.0.1000.7").unwrap().capabilities();
        assert!(v25.failback_allowed_with(UpdatePolicy::SqlServer2025));
        assert!(!v25.failback_allowed_with(UpdatePolicy::SqlServer2022));
        let v19 = SqlVersion::parse("15.0.4312.2").unwrap().capabilities();
        assert!(!v19.failback_allowed_with(UpdatePolicy::SqlServer2022));
    }

    #[test]
    fn update_policy_reads_both_spellings() {
        assert_eq!(
            UpdatePolicy::parse("SQLServer2022").unwrap(),
            UpdatePolicy::SqlServer2022
        );
        assert_eq!(
            UpdatePolicy::parse("SqlServer2025").unwrap(),
            UpdatePolicy::SqlServer2025
        );
        assert_eq!(
            UpdatePolicy::parse("SQLServer2025").unwrap(),
            UpdatePolicy::SqlServer2025
        );
        assert_eq!(
            UpdatePolicy::parse("alwaysUpToDate").unwrap(),
            UpdatePolicy::AlwaysUpToDate
        );
        assert!(UpdatePolicy::parse("SQLServer2019").is_err());
    }
}

#[cfg(test)]
mod network_name_tests {
    use super::*;

    #[test]
    fn endpoint_host_accepts_ips_and_dns_names() {
        let v4 = EndpointHost::new("10.0.0.4").unwrap();
        assert_eq!(v4.kind(), HostKind::Ipv4);
        assert_eq!(
            v4.tcp_url(TcpPort::MIRRORING_DEFAULT),
            "TCP://10.0.0.4:5022"
        );
        let v6 = EndpointHost::new("fd00:0:0:0::4").unwrap();
        assert_eq!(v6.kind(), HostKind::Ipv6);
        assert_eq!(v6.as_str(), "fd00::4");
        assert_eq!(
            v6.tcp_url(TcpPort::new(5023).unwrap()),
            "TCP://[fd00::4]:5023"
        );
        assert_eq!(EndpointHost::new("[::1]").unwrap().as_str(), "::1");
        let dns = EndpointHost::new("TailspinSql.corp.tailspin.example").unwrap();
        assert_eq!(dns.kind(), HostKind::Dns);
        assert_eq!(
            dns.tcp_url(TcpPort::MIRRORING_DEFAULT),
            "TCP://TailspinSql.corp.tailspin.example:5022"
        );
        assert!(EndpointHost::new("TAILSPINSQL").is_ok());
        assert!(EndpointHost::new("a".repeat(63)).is_ok());
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(long.len(), 253);
        assert!(EndpointHost::new(&long).is_ok());
    }

    #[test]
    fn endpoint_host_refuses_everything_else() {
        for bad in [
            "",
            "tailspin sql",
            "host;Server=x",
            "host'--",
            "host\"",
            "[host]",
            "host]",
            "tcp://host",
            "host:5022",
            "10.0.0.4:5022",
            "fe80::1%eth0",
            "-host",
            "host-.corp",
            "host..corp",
            "host.",
            ".host",
            "hóst",
            "host_name",
            "999.1.1.1",
            "10.0.0",
            "01.2.3.4",
            "host\n",
        ] {
            assert!(EndpointHost::new(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(EndpointHost::new("a".repeat(64)).is_err());
        let long = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62)
        );
        assert!(EndpointHost::new(&long).is_err());
        let e = EndpointHost::new("host:5022").unwrap_err();
        assert!(e.to_string().contains("give the port separately"), "{e}");
    }

    #[test]
    fn tcp_port_refuses_zero() {
        assert_eq!(TcpPort::new(0).unwrap_err().rule, NameRule::ZeroPort);
        assert_eq!(TcpPort::new(65535).unwrap().get(), 65535);
        assert_eq!(TcpPort::default(), TcpPort::MIRRORING_DEFAULT);
        assert!(serde_json::from_str::<TcpPort>("0").is_err());
        assert_eq!(serde_json::from_str::<TcpPort>("5022").unwrap().get(), 5022);
    }

    #[test]
    fn mi_fqdn_names_the_instance_and_the_certificate() {
        let fqdn = MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap();
        assert_eq!(fqdn.instance_name(), "tailspin-mi");
        assert_eq!(
            CertificateName::from(&fqdn).as_str(),
            "tailspin-mi.abc123.database.windows.net"
        );
        assert_eq!(
            fqdn.host().tcp_url(TcpPort::MIRRORING_DEFAULT),
            "TCP://tailspin-mi.abc123.database.windows.net:5022"
        );
        assert_eq!(MiFqdn::new("localmi").unwrap().instance_name(), "localmi");
        for bad in [
            "",
            "tailspin mi.database.windows.net",
            "mi].x",
            "mi.x.",
            "10.0.0.4",
        ] {
            assert!(MiFqdn::new(bad).is_err(), "{bad:?} should be refused");
        }
        // A certificate is named after it, so it must fit a sysname.
        let long = format!("{}.{}.database.windows.net", "a".repeat(63), "b".repeat(44));
        assert_eq!(long.len(), 129);
        assert!(MiFqdn::new(&long).is_err());
        assert!(EndpointHost::new(&long).is_ok());
        assert!(serde_json::from_str::<MiFqdn>("\"mi.x.database.windows.net\"").is_ok());
        assert!(serde_json::from_str::<MiFqdn>("\"mi x\"").is_err());
    }

    #[test]
    fn endpoint_name_is_a_sysname() {
        assert!(EndpointName::new("database_mirroring_endpoint").is_ok());
        assert!(EndpointName::new("").is_err());
        assert!(EndpointName::new("x".repeat(129)).is_err());
    }
}
