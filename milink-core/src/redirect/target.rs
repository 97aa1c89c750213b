//! Where the workload goes after a role change: the new primary's address and the connection
//! string derived from the one the user gave for SQL Server.

use std::fmt;

use serde::Serialize;

use crate::lifecycle::{LinkSpec, Side};
use crate::names::{EndpointHost, MiFqdn, TcpPort};
use crate::secret::Secret;

use super::RedirectError;
use super::connection_string::{ConnectionString, DataSource, Keyword};

/// The managed instance's client ports.
///
/// UNVERIFIED (milink-facts §4.5, §9): 1433 for the VNet-local endpoint and 3342 for the
/// public endpoint come from general knowledge of managed instances, not from the pages the
/// facts were built from; both are configurable for that reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MiPorts {
    /// Port of the VNet-local endpoint `<mi>.<dns-zone>.database.windows.net` (default 1433).
    pub vnet_local: TcpPort,
    /// Port of the public endpoint `<mi>.public.<dns-zone>.database.windows.net` (default 3342).
    pub public: TcpPort,
}

/// Default port of the managed instance's VNet-local endpoint (UNVERIFIED).
pub const MI_VNET_LOCAL_PORT: u16 = 1433;
/// Default port of the managed instance's public endpoint (UNVERIFIED).
pub const MI_PUBLIC_PORT: u16 = 3342;

impl Default for MiPorts {
    fn default() -> Self {
        MiPorts {
            vnet_local: TcpPort::new(MI_VNET_LOCAL_PORT).unwrap_or_default(),
            public: TcpPort::new(MI_PUBLIC_PORT).unwrap_or_default(),
        }
    }
}

/// Which managed instance endpoint the workload should use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EndpointChoice {
    /// The VNet-local endpoint: the link's FQDN, on [`MiPorts::vnet_local`].
    #[default]
    VnetLocal,
    /// The public endpoint: `<mi>.public.<dns-zone>.database.windows.net` on
    /// [`MiPorts::public`] (it must be enabled on the instance).
    Public,
    /// Any other address that reaches the instance (a private endpoint, a DNS alias).
    Custom {
        /// Host name or IP address.
        host: EndpointHost,
        /// Port.
        port: TcpPort,
    },
}

/// Microsoft Entra authentication methods, as SqlClient's `Authentication` keyword names them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntraAuth {
    /// `Active Directory Default` (DefaultAzureCredential chain); `User ID` optionally names a
    /// user-assigned managed identity's client id.
    Default {
        /// Client id of a user-assigned managed identity.
        client_id: Option<String>,
    },
    /// `Active Directory Managed Identity`; `User ID` is the client id of a user-assigned
    /// identity, absent for the system-assigned one.
    ManagedIdentity {
        /// Client id of a user-assigned managed identity.
        client_id: Option<String>,
    },
    /// `Active Directory Password`: an Entra user name and password.
    Password {
        /// The Entra user principal name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Active Directory Service Principal`: an application's client id and secret.
    ServicePrincipal {
        /// The application (client) id.
        client_id: String,
        /// The client secret.
        secret: Secret,
    },
    /// `Active Directory Interactive`; `User ID` is an optional login hint.
    Interactive {
        /// Login hint.
        login_hint: Option<String>,
    },
    /// `Active Directory Integrated` (the signed-in Windows user, federated with Entra).
    Integrated,
    /// `Active Directory Workload Identity` (Kubernetes federated credentials).
    WorkloadIdentity {
        /// Client id, when not taken from the environment.
        client_id: Option<String>,
    },
    /// `Active Directory Device Code Flow`.
    DeviceCodeFlow,
}

impl EntraAuth {
    /// The value of the `Authentication` keyword.
    pub fn method(&self) -> &'static str {
        match self {
            EntraAuth::Default { .. } => "Active Directory Default",
            EntraAuth::ManagedIdentity { .. } => "Active Directory Managed Identity",
            EntraAuth::Password { .. } => "Active Directory Password",
            EntraAuth::ServicePrincipal { .. } => "Active Directory Service Principal",
            EntraAuth::Interactive { .. } => "Active Directory Interactive",
            EntraAuth::Integrated => "Active Directory Integrated",
            EntraAuth::WorkloadIdentity { .. } => "Active Directory Workload Identity",
            EntraAuth::DeviceCodeFlow => "Active Directory Device Code Flow",
        }
    }

    /// `(User ID, Password)` for this method.
    fn credentials(&self) -> (Option<&str>, Option<&Secret>) {
        match self {
            EntraAuth::Default { client_id }
            | EntraAuth::ManagedIdentity { client_id }
            | EntraAuth::WorkloadIdentity { client_id } => (client_id.as_deref(), None),
            EntraAuth::Interactive { login_hint } => (login_hint.as_deref(), None),
            EntraAuth::Password { user, password } => (Some(user), Some(password)),
            EntraAuth::ServicePrincipal { client_id, secret } => (Some(client_id), Some(secret)),
            EntraAuth::Integrated | EntraAuth::DeviceCodeFlow => (None, None),
        }
    }
}

/// How the redirected connection string authenticates to the managed instance.
///
/// The rule for Windows authentication: a managed instance does not know the SQL Server's
/// Active Directory Windows logins (logins are not carried by the link, milink-facts §1.8), and
/// it accepts `Integrated Security` only for Microsoft Entra principals through *Windows
/// Authentication for Microsoft Entra principals* (Kerberos), which is set up separately. So:
/// - [`RedirectAuth::Keep`] keeps every authentication key as the user wrote it, and adds a
///   note to the target when that is Windows authentication or a SQL login;
/// - every other choice removes `Integrated Security` (`Trusted_Connection`), `User ID`,
///   `Password` and `Authentication`, then writes the keys of the chosen method, where the
///   first removed key was (keeping the user's spelling of a key it writes again).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RedirectAuth {
    /// Keep the original authentication keys.
    #[default]
    Keep,
    /// SQL authentication with a login that exists on the managed instance.
    SqlPassword {
        /// The login name.
        user: String,
        /// Its password.
        password: Secret,
    },
    /// Microsoft Entra authentication.
    Entra(EntraAuth),
}

/// The authentication keywords a [`RedirectAuth`] other than `Keep` replaces.
const AUTH_KEYWORDS: &[Keyword] = &[
    Keyword::IntegratedSecurity,
    Keyword::UserId,
    Keyword::Password,
    Keyword::Authentication,
];

/// Keys tied to the SQL Server host that would break or mislead a connection to the managed
/// instance, with the reason given in the target's notes.
const HOST_BOUND: &[(Keyword, &str)] = &[
    (
        Keyword::FailoverPartner,
        "it names the SQL Server's database mirroring partner; a managed instance has none",
    ),
    (
        Keyword::FailoverPartnerSpn,
        "it is the Kerberos SPN of the SQL Server's mirroring partner",
    ),
    (Keyword::ServerSpn, "it is the SQL Server's Kerberos SPN"),
    (
        Keyword::HostNameInCertificate,
        "it names the SQL Server's TLS certificate; the managed instance presents its own",
    ),
    (
        Keyword::ServerCertificate,
        "it pins the SQL Server's TLS certificate; the managed instance presents its own",
    ),
    (
        Keyword::NetworkLibrary,
        "the tcp: prefix of the new Data Source chooses the protocol",
    ),
];

/// The note on a target computed without the user's connection string.
const NO_ORIGINAL: &str = "no connection string was given for SQL Server, so this one names only \
     the server: add the database, authentication and encryption settings the workload uses";

/// Everything the session needs to compute a redirect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RedirectOptions {
    /// The connection string the workload uses for SQL Server. Failback returns to it as
    /// written; the managed instance's string is derived from it.
    pub original: ConnectionString,
    /// Which managed instance endpoint to use.
    pub endpoint: EndpointChoice,
    /// The managed instance's client ports (UNVERIFIED defaults 1433 / 3342).
    pub ports: MiPorts,
    /// How to authenticate to the managed instance.
    pub auth: RedirectAuth,
}

impl RedirectOptions {
    /// Options with `original` and every other setting at its default (VNet-local endpoint,
    /// authentication kept).
    pub fn new(original: ConnectionString) -> Self {
        RedirectOptions {
            original,
            ..RedirectOptions::default()
        }
    }

    /// Options for the connection string the workload uses for SQL Server, as the user gave
    /// it (`text`), every other setting at its default.
    ///
    /// A string that is given must name the server. One without any `key=value` pair (empty,
    /// blank, only `;`) is refused with [`RedirectError::EmptyConnectionString`] rather than
    /// taken for "no connection string" (`RedirectOptions::default()`, whose targets name only
    /// the server); one without `Server` / `Data Source` with [`RedirectError::NoDataSource`].
    pub fn from_connection_string(text: &str) -> Result<Self, RedirectError> {
        let original = ConnectionString::parse(text)?;
        if original.is_empty() {
            return Err(RedirectError::EmptyConnectionString);
        }
        original.data_source()?.ok_or(RedirectError::NoDataSource)?;
        Ok(RedirectOptions::new(original))
    }
}

/// Where the workload must connect after a role change, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedirectTarget {
    /// The redirect this target answers: `<link>/redirect/<n>`, where `n` counts the link's
    /// redirects ([`crate::lifecycle::Machine::redirect_id`]). The hook is called at least once
    /// per redirect, and every call for one redirect carries the same id (across retries,
    /// resumes and crashes), so an application can ignore a repeat. Empty on a target computed
    /// by [`RedirectTarget::for_primary`] outside a session.
    pub redirect_id: String,
    /// The side that is now primary.
    pub side: Side,
    /// The host to connect to.
    pub host: String,
    /// The TCP port; `None` when the original SQL Server string names an instance without a
    /// port (SQL Server Browser resolves it) or uses named pipes or shared memory.
    pub port: Option<TcpPort>,
    /// The connection string for the workload. `Display`, `Debug` and `Serialize` redact its
    /// password; [`ConnectionString::expose`] gives the text to hand over.
    pub connection_string: ConnectionString,
    /// What was changed beyond host and authentication, and what the user must check (never
    /// a value, only key names and reasons).
    pub notes: Vec<String>,
}

impl RedirectTarget {
    /// The target for `primary` of the link in `spec`.
    ///
    /// - Managed instance: the chosen endpoint, and the original string with `Data Source` set
    ///   to `tcp:<host>,<port>`, host-bound keys removed (see the notes), authentication as
    ///   `options.auth` says, and everything else (database, application name, encryption
    ///   settings, timeouts, `MultiSubnetFailover`, unknown keys) kept in place.
    /// - SQL Server: the original string as written, with the host and port of its
    ///   `Data Source`.
    ///
    /// With no original string at all (`RedirectOptions::default()`), the targets hold only the
    /// server (`@@SERVERNAME` for SQL Server) and say so in their notes.
    ///
    /// The target's `redirect_id` is empty: the session names the redirect with
    /// [`RedirectTarget::with_redirect_id`].
    pub fn for_primary(
        spec: &LinkSpec,
        primary: Side,
        options: &RedirectOptions,
    ) -> Result<RedirectTarget, RedirectError> {
        match primary {
            Side::ManagedInstance => {
                let (host, port) = match &options.endpoint {
                    EndpointChoice::VnetLocal => (
                        spec.target.fqdn.as_str().to_owned(),
                        options.ports.vnet_local,
                    ),
                    EndpointChoice::Public => (
                        public_endpoint_host(&spec.target.fqdn)?.as_str().to_owned(),
                        options.ports.public,
                    ),
                    EndpointChoice::Custom { host, port } => (host.as_str().to_owned(), *port),
                };
                let (connection_string, mut notes) =
                    derive_for_instance(&options.original, &host, port, &options.auth)?;
                if options.original.is_empty() {
                    notes.insert(0, NO_ORIGINAL.to_owned());
                }
                Ok(RedirectTarget {
                    redirect_id: String::new(),
                    side: primary,
                    host,
                    port: Some(port),
                    connection_string,
                    notes,
                })
            }
            Side::SqlServer if options.original.is_empty() => {
                // No connection string was given: address SQL Server by @@SERVERNAME.
                let server = spec.source.server.as_str();
                let source = DataSource::parse(server)?;
                let mut connection_string = ConnectionString::new();
                connection_string.set_keyword(Keyword::DataSource, server);
                Ok(RedirectTarget {
                    redirect_id: String::new(),
                    side: primary,
                    port: source.effective_port(),
                    host: source.host,
                    connection_string,
                    notes: vec![NO_ORIGINAL.to_owned()],
                })
            }
            Side::SqlServer => {
                let source = options
                    .original
                    .data_source()?
                    .ok_or(RedirectError::NoDataSource)?;
                Ok(RedirectTarget {
                    redirect_id: String::new(),
                    side: primary,
                    port: source.effective_port(),
                    host: source.host,
                    connection_string: options.original.clone(),
                    notes: Vec::new(),
                })
            }
        }
    }

    /// The same target, naming the redirect it answers (see [`RedirectTarget::redirect_id`]).
    pub fn with_redirect_id(self, redirect_id: impl Into<String>) -> Self {
        RedirectTarget {
            redirect_id: redirect_id.into(),
            ..self
        }
    }

    /// `text` with this target's secrets replaced by `***` (for hook error messages).
    pub fn scrub(&self, text: &str) -> String {
        self.connection_string.scrub(text)
    }
}

impl fmt::Display for RedirectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::SqlServer => "SQL Server",
            Side::ManagedInstance => "managed instance",
        };
        match self.port {
            Some(port) => write!(f, "{side} at {},{port}", self.host),
            None => write!(f, "{side} at {}", self.host),
        }
    }
}

/// `<mi>.public.<dns-zone>.database.windows.net` from `<mi>.<dns-zone>.database.windows.net`:
/// `public` becomes the second label. An FQDN that already has it is returned as it is.
pub fn public_endpoint_host(fqdn: &MiFqdn) -> Result<EndpointHost, RedirectError> {
    let error = |reason| RedirectError::PublicEndpoint {
        fqdn: fqdn.as_str().to_owned(),
        reason,
    };
    let labels: Vec<&str> = fqdn.as_str().split('.').collect();
    if labels.len() < 3 {
        return Err(error(
            "expected <instance>.<dns-zone>.<domain>, with at least three labels",
        ));
    }
    if labels[1].eq_ignore_ascii_case("public") {
        return EndpointHost::new(fqdn.as_str()).map_err(|_| error("not a valid host name"));
    }
    let mut public = Vec::with_capacity(labels.len() + 1);
    public.push(labels[0]);
    public.push("public");
    public.extend(&labels[1..]);
    EndpointHost::new(public.join("."))
        .map_err(|_| error("the public host name would not be a valid DNS name"))
}

fn is_true(value: &str) -> bool {
    let v = value.trim();
    ["true", "yes", "sspi"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

fn check_credential(value: &str, what: &'static str) -> Result<(), RedirectError> {
    if value.trim().is_empty() {
        return Err(RedirectError::InvalidAuth(what));
    }
    if value.contains('\0') {
        return Err(RedirectError::InvalidAuth("a credential contains NUL"));
    }
    Ok(())
}

/// The managed instance's connection string and the notes about what changed.
fn derive_for_instance(
    original: &ConnectionString,
    host: &str,
    port: TcpPort,
    auth: &RedirectAuth,
) -> Result<(ConnectionString, Vec<String>), RedirectError> {
    let mut cs = original.clone();
    let mut notes = Vec::new();
    cs.set_keyword(Keyword::DataSource, &format!("tcp:{host},{port}"));
    for (keyword, reason) in HOST_BOUND {
        if cs.contains(keyword.canonical()) {
            let spelling = cs
                .spelling(keyword.canonical())
                .unwrap_or_default()
                .to_owned();
            cs.remove(keyword.canonical());
            notes.push(format!("removed {spelling}: {reason}"));
        }
    }
    match auth {
        RedirectAuth::Keep => {
            if cs
                .get_keyword(Keyword::IntegratedSecurity)
                .is_some_and(is_true)
            {
                notes.push(
                    "kept Integrated Security: a managed instance accepts Windows authentication \
                     only for Microsoft Entra principals (Windows Authentication for Microsoft \
                     Entra principals, Kerberos); otherwise choose SQL or Entra authentication"
                        .to_owned(),
                );
            } else if cs.get_keyword(Keyword::Authentication).is_none()
                && cs.contains(Keyword::UserId.canonical())
            {
                notes.push(
                    "kept the SQL login: logins are not carried by the link, so it must exist \
                     on the managed instance (with the same SID for database users to map)"
                        .to_owned(),
                );
            }
        }
        RedirectAuth::SqlPassword { user, password } => {
            check_credential(user, "a SQL login name is required")?;
            cs.replace_group(
                AUTH_KEYWORDS,
                vec![
                    (Keyword::UserId, user.clone()),
                    (Keyword::Password, password.expose().to_owned()),
                ],
            );
        }
        RedirectAuth::Entra(entra) => {
            let (user, password) = entra.credentials();
            let mut block = vec![(Keyword::Authentication, entra.method().to_owned())];
            if let Some(user) = user {
                check_credential(user, "an empty user or client id was given")?;
                block.push((Keyword::UserId, user.to_owned()));
            }
            if let Some(password) = password {
                block.push((Keyword::Password, password.expose().to_owned()));
            }
            cs.replace_group(AUTH_KEYWORDS, block);
        }
    }
    Ok((cs, notes))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lifecycle::{FailoverMode, MachineOptions, SeedingMode, SourceSpec, TargetSpec};
    use crate::names::{
        AgName, CertificateName, DatabaseName, EndpointName, InstanceId, LinkMode, LinkName,
        ServerName, SqlVersion, UpdatePolicy,
    };
    use crate::time::Date;

    pub(crate) fn spec() -> LinkSpec {
        LinkSpec {
            link: LinkName::new("DAG_ToyStore").unwrap(),
            mode: LinkMode::SingleDatabase,
            databases: vec![DatabaseName::new("ToyStore").unwrap()],
            initial_primary: Side::SqlServer,
            failover_mode: FailoverMode::Manual,
            seeding_mode: SeedingMode::Automatic,
            source: SourceSpec {
                server: ServerName::new("TailspinSql").unwrap(),
                version: "16.0.4125.3".parse::<SqlVersion>().unwrap(),
                endpoint_host: EndpointHost::new("10.0.0.4").unwrap(),
                endpoint_port: TcpPort::MIRRORING_DEFAULT,
                endpoint_name: EndpointName::new("database_mirroring_endpoint").unwrap(),
                certificate: CertificateName::new("Cert_TailspinSql_endpoint").unwrap(),
                certificate_expiry: Date::new(2030, 1, 1).unwrap(),
                ag: AgName::new("AG_ToyStore").unwrap(),
            },
            target: TargetSpec {
                instance: InstanceId::parse(
                    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Sql/managedInstances/tailspin-mi",
                )
                .unwrap(),
                fqdn: MiFqdn::new("tailspin-mi.abc123.database.windows.net").unwrap(),
                ag: AgName::new("MI_ToyStore").unwrap(),
                update_policy: UpdatePolicy::SqlServer2022,
            },
            session_timeout_s: 20,
            route: crate::lifecycle::LinkRoute::Direct,
            options: MachineOptions::default(),
        }
    }

    fn cs(text: &str) -> ConnectionString {
        ConnectionString::parse(text).unwrap()
    }

    fn to_mi(original: &str, auth: RedirectAuth) -> RedirectTarget {
        let options = RedirectOptions {
            auth,
            ..RedirectOptions::new(cs(original))
        };
        RedirectTarget::for_primary(&spec(), Side::ManagedInstance, &options).unwrap()
    }

    const MI: &str = "tcp:tailspin-mi.abc123.database.windows.net,1433";

    fn sql(user: &str, password: &str) -> RedirectAuth {
        RedirectAuth::SqlPassword {
            user: user.to_owned(),
            password: Secret::new(password),
        }
    }

    /// (original, auth, expected redirected string).
    #[test]
    fn derived_strings_keep_the_users_settings() {
        let cases: Vec<(&str, RedirectAuth, String)> = vec![
            (
                "Server=TailspinSql;Database=ToyStore;Integrated Security=True;Application Name=Tailspin.Web;Encrypt=True;TrustServerCertificate=False",
                sql("tailspin_app", "p@ss;w=rd"),
                format!(
                    "Server={MI};Database=ToyStore;User ID=tailspin_app;Password=\"p@ss;w=rd\";Application Name=Tailspin.Web;Encrypt=True;TrustServerCertificate=False"
                ),
            ),
            (
                // Synonyms and the user's spellings survive; a quoted value with ';' and '='
                // stays as written.
                "addr=tcp:10.0.0.4,1433;initial catalog='Toy;Store=1';uid=old;pwd=\"o\"\"ld\";App=\"Tail spin\";MultiSubnetFailover=yes;Connect Timeout=45",
                sql("new'user", "n\"ew"),
                format!(
                    "addr={MI};initial catalog='Toy;Store=1';uid=\"new'user\";pwd='n\"ew';App=\"Tail spin\";MultiSubnetFailover=yes;Connect Timeout=45"
                ),
            ),
            (
                "Data Source=sql01\\INST;Trusted_Connection=yes;Database=ToyStore;Encrypt=Strict",
                RedirectAuth::Entra(EntraAuth::ManagedIdentity { client_id: None }),
                format!(
                    "Data Source={MI};Authentication=\"Active Directory Managed Identity\";Database=ToyStore;Encrypt=Strict"
                ),
            ),
            (
                "Server=sql01;User ID=sa;Password=x;Database=ToyStore",
                RedirectAuth::Entra(EntraAuth::Default {
                    client_id: Some("1111-2222".to_owned()),
                }),
                format!(
                    "Server={MI};Authentication=\"Active Directory Default\";User ID=1111-2222;Database=ToyStore"
                ),
            ),
            (
                "Server=sql01;Database=ToyStore",
                RedirectAuth::Entra(EntraAuth::ServicePrincipal {
                    client_id: "app-id".to_owned(),
                    secret: Secret::new("s3c"),
                }),
                format!(
                    "Server={MI};Database=ToyStore;Authentication=\"Active Directory Service Principal\";User ID=app-id;Password=s3c"
                ),
            ),
            (
                // Keep: nothing but the server and host-bound keys change.
                "Server=sql01;Failover Partner=sql02;Database=ToyStore;Host Name In Certificate=sql01.corp;User ID=app;Password=\"keep me\";ServerSPN=MSSQLSvc/sql01",
                RedirectAuth::Keep,
                format!("Server={MI};Database=ToyStore;User ID=app;Password=\"keep me\""),
            ),
            (
                // Duplicated server keys: the last one is replaced, the stale ones go.
                "Server=a;Database=ToyStore;Data Source=b;Server=c",
                RedirectAuth::Keep,
                format!("Database=ToyStore;Server={MI}"),
            ),
            ("", RedirectAuth::Keep, format!("Data Source={MI}")),
        ];
        for (original, auth, expected) in cases {
            let target = to_mi(original, auth);
            assert_eq!(target.connection_string.expose(), expected, "{original}");
            assert_eq!(cs(&expected), target.connection_string, "{original}");
        }
    }

    #[test]
    fn integrated_security_is_dropped_for_sql_and_entra_and_noted_when_kept() {
        let original = "Server=sql01;Integrated Security=SSPI;Database=ToyStore";
        let kept = to_mi(original, RedirectAuth::Keep);
        assert_eq!(
            kept.connection_string.get("Integrated Security"),
            Some("SSPI")
        );
        assert!(kept.notes.iter().any(|n| n.contains("Integrated Security")));
        for auth in [
            sql("u", "p"),
            RedirectAuth::Entra(EntraAuth::Integrated),
            RedirectAuth::Entra(EntraAuth::Password {
                user: "u@contoso.com".to_owned(),
                password: Secret::new("p"),
            }),
        ] {
            let target = to_mi(original, auth);
            assert!(!target.connection_string.contains("Trusted_Connection"));
            assert!(!target.connection_string.contains("Integrated Security"));
        }
    }

    #[test]
    fn host_bound_keys_are_removed_with_a_note_naming_the_key() {
        let target = to_mi(
            "Server=sql01;Network Library=dbmssocn;Failover Partner=sql02;Database=D",
            RedirectAuth::Keep,
        );
        assert!(!target.connection_string.contains("Failover Partner"));
        assert!(!target.connection_string.contains("net"));
        assert_eq!(target.notes.len(), 2, "{:?}", target.notes);
        assert!(target.notes[0].contains("Failover Partner"));
        assert!(!target.notes.iter().any(|n| n.contains("sql02")));
    }

    #[test]
    fn empty_credentials_are_refused() {
        let options = RedirectOptions {
            auth: sql(" ", "p"),
            ..RedirectOptions::new(cs("Server=a"))
        };
        assert!(matches!(
            RedirectTarget::for_primary(&spec(), Side::ManagedInstance, &options),
            Err(RedirectError::InvalidAuth(_))
        ));
    }

    #[test]
    fn endpoints_and_ports() {
        let original = cs("Server=sql01;Database=ToyStore");
        let mut options = RedirectOptions::new(original);
        let t = RedirectTarget::for_primary(&spec(), Side::ManagedInstance, &options).unwrap();
        assert_eq!(t.host, "tailspin-mi.abc123.database.windows.net");
        assert_eq!(t.port, Some(TcpPort::new(1433).unwrap()));
        assert_eq!(
            t.to_string(),
            "managed instance at tailspin-mi.abc123.database.windows.net,1433"
        );

        options.endpoint = EndpointChoice::Public;
        let t = RedirectTarget::for_primary(&spec(), Side::ManagedInstance, &options).unwrap();
        assert_eq!(t.host, "tailspin-mi.public.abc123.database.windows.net");
        assert_eq!(
            t.connection_string.get("Server"),
            Some("tcp:tailspin-mi.public.abc123.database.windows.net,3342")
        );

        options.ports.public = TcpPort::new(3343).unwrap();
        let t = RedirectTarget::for_primary(&spec(), Side::ManagedInstance, &options).unwrap();
        assert_eq!(t.port, Some(TcpPort::new(3343).unwrap()));

        options.endpoint = EndpointChoice::Custom {
            host: EndpointHost::new("mi-pe.privatelink.contoso.com").unwrap(),
            port: TcpPort::new(1433).unwrap(),
        };
        let t = RedirectTarget::for_primary(&spec(), Side::ManagedInstance, &options).unwrap();
        assert_eq!(
            t.connection_string.get("Server"),
            Some("tcp:mi-pe.privatelink.contoso.com,1433")
        );
    }

    #[test]
    fn public_endpoint_host_shapes() {
        let host = |s| public_endpoint_host(&MiFqdn::new(s).unwrap());
        assert_eq!(
            host("mi.zone.database.windows.net").unwrap().as_str(),
            "mi.public.zone.database.windows.net"
        );
        assert_eq!(
            host("mi.public.zone.database.windows.net")
                .unwrap()
                .as_str(),
            "mi.public.zone.database.windows.net"
        );
        assert!(matches!(
            host("mi.local"),
            Err(RedirectError::PublicEndpoint { .. })
        ));
    }

    #[test]
    fn failback_returns_to_the_original_string_as_written() {
        let original = "Server=tcp:TailspinSql,1433;Database=ToyStore;Integrated Security=True;App='Tail;spin'";
        let options = RedirectOptions {
            auth: sql("ignored", "ignored"),
            ..RedirectOptions::new(cs(original))
        };
        let t = RedirectTarget::for_primary(&spec(), Side::SqlServer, &options).unwrap();
        assert_eq!(t.side, Side::SqlServer);
        assert_eq!(t.host, "TailspinSql");
        assert_eq!(t.port, Some(TcpPort::new(1433).unwrap()));
        assert_eq!(t.connection_string.expose(), original);

        let named = RedirectOptions::new(cs(r"Server=TailspinSql\PROD"));
        let t = RedirectTarget::for_primary(&spec(), Side::SqlServer, &named).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("TailspinSql", None));
    }

    #[test]
    fn without_an_original_string_the_targets_name_only_the_server() {
        let options = RedirectOptions::default();
        let t = RedirectTarget::for_primary(&spec(), Side::SqlServer, &options).unwrap();
        assert_eq!(t.connection_string.expose(), "Data Source=TailspinSql");
        assert_eq!(
            (t.host.as_str(), t.port),
            ("TailspinSql", Some(TcpPort::new(1433).unwrap()))
        );
        assert!(t.notes[0].contains("no connection string was given"));
        let t = RedirectTarget::for_primary(&spec(), Side::ManagedInstance, &options).unwrap();
        assert_eq!(t.connection_string.expose(), format!("Data Source={MI}"));
        assert!(t.notes[0].contains("no connection string was given"));
    }

    #[test]
    fn failback_needs_a_server_in_the_original() {
        let options = RedirectOptions::new(cs("Database=ToyStore"));
        assert!(matches!(
            RedirectTarget::for_primary(&spec(), Side::SqlServer, &options),
            Err(RedirectError::NoDataSource)
        ));
        let options = RedirectOptions::new(cs("Server=sql01,notaport"));
        assert!(matches!(
            RedirectTarget::for_primary(&spec(), Side::SqlServer, &options),
            Err(RedirectError::ConnectionString(_))
        ));
    }

    #[test]
    fn a_given_connection_string_must_name_the_server() {
        for blank in ["", "   ", ";;;", " ; ;\t"] {
            assert_eq!(
                RedirectOptions::from_connection_string(blank),
                Err(RedirectError::EmptyConnectionString),
                "{blank:?}"
            );
        }
        assert_eq!(
            RedirectOptions::from_connection_string("Database=ToyStore;Password=x"),
            Err(RedirectError::NoDataSource)
        );
        assert!(matches!(
            RedirectOptions::from_connection_string("Server=sql01,notaport"),
            Err(RedirectError::ConnectionString(_))
        ));
        let options = RedirectOptions::from_connection_string("Server=sql01;Database=D").unwrap();
        assert_eq!(options, RedirectOptions::new(cs("Server=sql01;Database=D")));
        let message = RedirectError::EmptyConnectionString.to_string();
        assert!(message.contains("empty"), "{message}");
    }

    #[test]
    fn targets_never_show_the_password() {
        let t = to_mi("Server=a;Database=D", sql("app", "Hunter2!"));
        let shown = format!(
            "{t} {t:?} {} {:?}",
            serde_json::to_string(&t).unwrap(),
            RedirectOptions {
                auth: sql("app", "Hunter2!"),
                ..RedirectOptions::default()
            }
        );
        assert!(!shown.contains("Hunter2"), "{shown}");
        assert!(t.connection_string.expose().contains("Password=Hunter2!"));
        assert_eq!(t.scrub("login failed for Hunter2!"), "login failed for ***");
    }
}
