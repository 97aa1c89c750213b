//! The real connectors: `SqlServer` (TDS), `ManagedInstance` (ARM, and optionally its T-SQL
//! endpoint), `Credential` (where ARM's bearer tokens come from), and `gather` (the readiness
//! facts of a real pair).
//!
//! Secrets (passwords, tokens, client secrets) are held as [`Secret`]s: never in a repr, a
//! message or the journal.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use milink_core::arm::client::{
    ArmManagedInstance, ArmOptions, CredentialChoice, CredentialError, StaticToken,
};
use milink_core::assess::gather::{GatherOptions, ModuleScan, gather_instance_facts};
use milink_core::lifecycle::{FullBackup, InstanceOp, LinkName, OperationRef, SideView, SourceOp};
use milink_core::names::{DatabaseName, InstanceId, SqlVersion};
use milink_core::ports::{
    ArmReply, ManagedInstance, PollReply, PortError, PortErrorKind, SourceReply, SourceServer,
};
use milink_core::redirect::WorkloadActivity;
use milink_core::redirect::connection_string::ConnectionString;
use milink_core::secret::Secret;
use milink_core::sqlserver::SqlServerAdapter;
use milink_core::sqlserver::connection::{CommandKind, ConnectError, ConnectOptions, Connection};
use milink_core::sqlserver::entra::CredentialTokens;
use milink_core::sqlserver::facts::TdsFactSource;
use milink_core::sqlserver::instance_reads::InstanceTsql;
use milink_core::sqlserver::render::RenderContext;
use milink_core::time::{SystemTimer, Timer};
use milink_core::tsql::readiness;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::to_py;
use crate::errors::{self, AuthenticationError, ConnectError as PyConnectError, invalid};
use crate::runtime::block_on;
use crate::serve::{ServedWorld, served_arm, served_tds};

/// `class(message)` with the three flags every milink error carries.
fn flagged(err: PyErr, transient: bool, caller_error: bool, remote: bool) -> PyErr {
    Python::attach(|py| {
        let value = err.value(py);
        let set = || -> PyResult<()> {
            value.setattr("transient", transient)?;
            value.setattr("caller_error", caller_error)?;
            value.setattr("remote", remote)?;
            Ok(())
        };
        match set() {
            Ok(()) => err,
            Err(e) => e,
        }
    })
}

/// A connection failure as Python sees it: `InvalidArgumentError` for options that cannot
/// work, `AuthenticationError` for a refused login, `ConnectError` otherwise. `what` names the
/// server. The messages come from the connector, which never puts a secret in them.
fn connect_error(what: &str, e: &ConnectError) -> PyErr {
    let message = format!("{what}: {e}");
    match e {
        ConnectError::BadCredentials { .. } | ConnectError::Token(_) => flagged(
            AuthenticationError::new_err(message),
            e.is_transient(),
            true,
            true,
        ),
        ConnectError::LoginRefused { number, .. } if *number == 18456 => {
            flagged(AuthenticationError::new_err(message), false, true, true)
        }
        ConnectError::LoginRefused { .. }
        | ConnectError::UnknownHost { .. }
        | ConnectError::Refused { .. }
        | ConnectError::Network { .. }
        | ConnectError::LoginTimeout { .. }
        | ConnectError::Tls { .. }
        | ConnectError::EncryptionUnavailable { .. }
        | ConnectError::Protocol { .. } => flagged(
            PyConnectError::new_err(message),
            e.is_transient(),
            false,
            true,
        ),
        _ => invalid(message),
    }
}

/// A failed call of a connector outside a session (its first read, `gather`), as Python sees
/// it: a refused login or token is `AuthenticationError`, the rest `ConnectError`.
fn port_error(what: &str, e: &PortError) -> PyErr {
    let message = format!("{what}: {}", e.message);
    let refused = match &e.kind {
        PortErrorKind::Sql(18456) => true,
        PortErrorKind::Arm { status, .. } | PortErrorKind::Http(status) => {
            matches!(status, 401 | 403)
        }
        PortErrorKind::Other(code) => code == "token" || code == "arm:token",
        _ => false,
    };
    if refused {
        flagged(
            AuthenticationError::new_err(message),
            e.transient,
            true,
            true,
        )
    } else {
        flagged(PyConnectError::new_err(message), e.transient, false, true)
    }
}

fn credential_error(e: CredentialError) -> PyErr {
    match e {
        CredentialError::Incomplete { .. } => invalid(e.to_string()),
        _ => flagged(
            AuthenticationError::new_err(e.to_string()),
            false,
            true,
            false,
        ),
    }
}

/// A future run to completion (blocking, GIL released, Ctrl-C honoured), whatever its output.
fn wait<T: Send>(py: Python<'_>, future: impl Future<Output = T> + Send) -> PyResult<T> {
    block_on(py, None, async move { Ok(future.await) })
}

// ---------------------------------------------------------------------------------------------
// Credential

#[derive(Clone)]
enum CredentialKind {
    /// The chain the environment names, chosen when the credential is used.
    Environment,
    /// One bearer token.
    Token(Secret),
    /// An explicit azure_identity credential.
    Choice(CredentialChoice),
    /// A Python object with `get_token(*scopes)` (an `azure.identity` credential).
    Python(Arc<PythonTokenCredential>),
}

/// A Python credential: an object whose `get_token(*scopes)` returns something with `token`
/// and `expires_on` (seconds since the Unix epoch), as `azure.identity` credentials do. It is
/// called on a blocking thread with the GIL; its token is never shown.
pub(crate) struct PythonTokenCredential {
    object: Py<PyAny>,
    /// Its type's name, for messages.
    kind: String,
}

impl std::fmt::Debug for PythonTokenCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PythonTokenCredential({})", self.kind)
    }
}

#[async_trait]
impl TokenCredential for PythonTokenCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        let object = Python::attach(|py| self.object.clone_ref(py));
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let kind = self.kind.clone();
        let called = tokio::task::spawn_blocking(move || {
            Python::attach(|py| -> PyResult<(String, i64)> {
                let args = pyo3::types::PyTuple::new(py, scopes)?;
                let token = object.bind(py).call_method1("get_token", args)?;
                Ok((
                    token.getattr("token")?.extract()?,
                    token.getattr("expires_on")?.extract()?,
                ))
            })
        })
        .await;
        let failed = |message: String| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, message)
        };
        match called {
            Ok(Ok((token, expires_on))) => Ok(azure_core::credentials::AccessToken::new(
                token,
                azure_core::time::OffsetDateTime::from_unix_timestamp(expires_on)
                    .unwrap_or(azure_core::time::OffsetDateTime::UNIX_EPOCH),
            )),
            // The credential library's own message (it names what to sign in to, not a secret).
            Ok(Err(e)) => Err(failed(Python::attach(|py| {
                let exception = e
                    .get_type(py)
                    .name()
                    .map_or_else(|_| "an exception".to_owned(), |n| n.to_string());
                format!(
                    "{kind}.get_token raised {exception}: {}; it must return an object with \
                     token (str) and expires_on (int, seconds since the Unix epoch)",
                    e.value(py)
                )
            }))),
            Err(e) => Err(failed(format!("{kind}.get_token did not finish: {e}"))),
        }
    }
}

/// Where the managed instance's ARM bearer tokens come from: the same kinds as the Rust
/// library (`Credential.environment()`, the default; `token`, `azure_cli`, `managed_identity`,
/// `client_secret`, `workload_identity`). Its repr names the kind and the ids, never a secret.
#[pyclass(module = "milink", name = "Credential", frozen)]
#[derive(Clone)]
pub(crate) struct PyCredential {
    kind: CredentialKind,
}

impl PyCredential {
    fn build(&self) -> PyResult<Arc<dyn TokenCredential>> {
        match &self.kind {
            CredentialKind::Environment => CredentialChoice::from_environment()
                .and_then(|c| c.build())
                .map_err(credential_error),
            CredentialKind::Token(token) => Ok(Arc::new(StaticToken::new(token.clone()))),
            CredentialKind::Choice(choice) => choice.build().map_err(credential_error),
            CredentialKind::Python(credential) => {
                Ok(Arc::clone(credential) as Arc<dyn TokenCredential>)
            }
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            CredentialKind::Environment => "the environment's credential".to_owned(),
            CredentialKind::Token(_) => "a bearer token".to_owned(),
            CredentialKind::Choice(choice) => choice.to_string(),
            CredentialKind::Python(credential) => format!("the Python {}", credential.kind),
        }
    }
}

fn nonempty(name: &str, value: String) -> PyResult<String> {
    if value.trim().is_empty() {
        return Err(invalid(format!("{name} must not be empty")));
    }
    Ok(value)
}

#[pymethods]
impl PyCredential {
    /// The credential the environment names, first match wins: workload identity
    /// (`AZURE_FEDERATED_TOKEN_FILE` + `AZURE_CLIENT_ID` + `AZURE_TENANT_ID`), a client secret
    /// (`AZURE_CLIENT_SECRET` + `AZURE_CLIENT_ID` + `AZURE_TENANT_ID`), a managed identity
    /// (`IDENTITY_ENDPOINT` or `MSI_ENDPOINT`), else the Azure CLI. A combination set in part
    /// raises InvalidArgumentError naming what is missing.
    #[staticmethod]
    fn environment() -> Self {
        PyCredential {
            kind: CredentialKind::Environment,
        }
    }

    /// One bearer token for `https://management.azure.com`, used as it is (for example from
    /// `az account get-access-token`); it is never shown.
    #[staticmethod]
    fn token(token: String) -> PyResult<Self> {
        Ok(PyCredential {
            kind: CredentialKind::Token(Secret::new(nonempty("token", token)?)),
        })
    }

    /// A Python credential: any object with `get_token(*scopes)` returning an object with
    /// `token` and `expires_on`, such as `azure.identity.DefaultAzureCredential()`. It is called
    /// on a worker thread whenever a token is due.
    #[staticmethod]
    fn from_python(credential: Bound<'_, PyAny>) -> PyResult<Self> {
        let py = credential.py();
        let callable = credential
            .getattr("get_token")
            .map(|m| m.is_callable())
            .unwrap_or(false);
        let kind = credential
            .get_type()
            .name()
            .map_or_else(|_| "credential".to_owned(), |n| n.to_string());
        if !callable {
            return Err(errors::argument_type(
                py,
                format!(
                    "credential must have a get_token(*scopes) method (an azure.identity \
                     credential), and a {kind} has none"
                ),
            ));
        }
        Ok(PyCredential {
            kind: CredentialKind::Python(Arc::new(PythonTokenCredential {
                object: credential.unbind(),
                kind,
            })),
        })
    }

    /// The account the Azure CLI is signed in with (`az login`).
    #[staticmethod]
    #[pyo3(signature = (*, tenant_id = None))]
    fn azure_cli(tenant_id: Option<String>) -> Self {
        PyCredential {
            kind: CredentialKind::Choice(CredentialChoice::AzureCli { tenant_id }),
        }
    }

    /// The host's managed identity: system-assigned, or the user-assigned one `client_id`
    /// names.
    #[staticmethod]
    #[pyo3(signature = (*, client_id = None))]
    fn managed_identity(client_id: Option<String>) -> Self {
        PyCredential {
            kind: CredentialKind::Choice(CredentialChoice::ManagedIdentity { client_id }),
        }
    }

    /// A service principal signing in with a client secret (never shown).
    #[staticmethod]
    fn client_secret(tenant_id: String, client_id: String, secret: String) -> PyResult<Self> {
        Ok(PyCredential {
            kind: CredentialKind::Choice(CredentialChoice::ClientSecret {
                tenant_id: nonempty("tenant_id", tenant_id)?,
                client_id: nonempty("client_id", client_id)?,
                secret: Secret::new(nonempty("secret", secret)?),
            }),
        })
    }

    /// Workload identity: the federated token in `token_file` exchanged for the app's.
    #[staticmethod]
    fn workload_identity(
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    ) -> PyResult<Self> {
        Ok(PyCredential {
            kind: CredentialKind::Choice(CredentialChoice::WorkloadIdentity {
                tenant_id: nonempty("tenant_id", tenant_id)?,
                client_id: nonempty("client_id", client_id)?,
                token_file,
            }),
        })
    }

    fn __repr__(&self) -> String {
        format!("<Credential {}>", self.describe())
    }

    fn __str__(&self) -> String {
        self.describe()
    }
}

// ---------------------------------------------------------------------------------------------
// SQL Server

/// A connected SQL Server: the adapter the session drives, and what was read at connect.
pub(crate) struct SqlSide {
    adapter: SqlServerAdapter,
    /// `@@SERVERNAME`.
    pub(crate) server_name: String,
    /// `SERVERPROPERTY('ProductVersion')`.
    pub(crate) version: SqlVersion,
    host: String,
    port: u16,
    /// The lab serving it, when it is one served in this process.
    pub(crate) served: Option<Arc<ServedWorld>>,
}

impl SqlSide {
    fn describe(&self) -> String {
        format!(
            "SQL Server {} at {}:{}",
            self.server_name, self.host, self.port
        )
    }
}

/// The connection options from the caller's arguments: `password` and `trusted_ca` set into
/// the string (given once), `credential` as the Entra token provider. A string that names no
/// server (empty, blanks, `;;`) is refused as the connector refuses it.
fn connect_options(
    connection_string: &str,
    password: Option<String>,
    credential: Option<&PyCredential>,
    trusted_ca: Option<PathBuf>,
    application_name: Option<String>,
) -> PyResult<ConnectOptions> {
    let refuse = |e: ConnectError| connect_error("the connection string", &e);
    let mut cs = ConnectionString::parse(connection_string)
        .map_err(|e| refuse(ConnectError::ConnectionString(e)))?;
    if cs.data_source().map_err(|e| refuse(e.into()))?.is_none() {
        return Err(refuse(ConnectError::MissingServer));
    }
    if let Some(password) = password {
        if cs.contains("Password") {
            return Err(invalid(
                "the connection string has a Password and password= was given too: give it once",
            ));
        }
        if credential.is_some() {
            return Err(invalid(
                "password= (a SQL login) and credential= (a Microsoft Entra token) exclude each \
                 other: give one",
            ));
        }
        cs.set_secret("Password", &Secret::new(password))
            .map_err(|e| refuse(e.into()))?;
    }
    if let Some(ca) = trusted_ca {
        if cs.contains("Server Certificate") {
            return Err(invalid(
                "the connection string has a Server Certificate and trusted_ca= was given too: \
                 give it once",
            ));
        }
        let text = ca
            .to_str()
            .ok_or_else(|| invalid(format!("trusted_ca {} is not valid UTF-8", ca.display())))?;
        cs.set("Server Certificate", text)
            .map_err(|e| refuse(e.into()))?;
    }
    if let Some(name) = application_name
        && !cs.contains("Application Name")
    {
        cs.set("Application Name", &name)
            .map_err(|e| refuse(e.into()))?;
    }
    let mut options = ConnectOptions::from_connection_string(&cs.expose()).map_err(refuse)?;
    if credential.is_none() && options.authentication().is_none() {
        // Said in Python terms: the connector's own message names its Rust API.
        return Err(match cs.get("Authentication") {
            Some(method) => invalid(format!(
                "the connection string: Authentication={} needs a Microsoft Entra token: pass \
                 credential= (a milink.Credential)",
                method.trim()
            )),
            None => invalid(
                "the connection string: no credentials: give User ID in it and password= (a \
                 SQL login), or credential= (a milink.Credential) for a Microsoft Entra token",
            ),
        });
    }
    if let Some(credential) = credential {
        let tokens = CredentialTokens::new(credential.build()?);
        options = options.with_token_provider(Arc::new(tokens));
    }
    Ok(options)
}

/// Connects and reads who the server is.
async fn open_sql(
    options: ConnectOptions,
    master_key_password: Option<Secret>,
) -> Result<SqlSide, PyErr> {
    let host = options.host().to_owned();
    let port = options.port();
    let what = format!("SQL Server at {host}:{port}");
    let render = RenderContext::with_password(master_key_password)
        .map_err(|e| invalid(format!("master_key_password: {e}")))?;
    let connection = Connection::new(options, Arc::new(SystemTimer));
    connection.connect().await.map_err(|e| match e {
        milink_core::sqlserver::connection::SqlError::Connect(c) => connect_error(&what, &c),
        other => port_error(&what, &PortError::from(other)),
    })?;
    let sets = connection
        .simple_query(
            readiness::instance_properties().expose_sql(),
            CommandKind::Probe,
        )
        .await
        .map_err(|e| port_error(&what, &PortError::from(e)))?;
    let rows = sets.last().map(|s| s.rows.as_slice()).unwrap_or_default();
    let version = milink_core::sqlserver::parse::product_version(rows)
        .map_err(|e| port_error(&what, &PortError::from(e)))?;
    let server_name = rows
        .first()
        .and_then(|r| r.opt_str("server_name").ok().flatten())
        .map(str::to_owned)
        .ok_or_else(|| {
            flagged(
                PyConnectError::new_err(format!("{what}: @@SERVERNAME is NULL")),
                false,
                false,
                true,
            )
        })?;
    let served = served_tds(&host, port);
    Ok(SqlSide {
        adapter: SqlServerAdapter::new(connection, render),
        server_name,
        version,
        host,
        port,
        served,
    })
}

/// A SQL Server reached over TDS (TLS always: `Encrypt=Mandatory` or `Strict`). Open one with
/// `SqlServer.connect(...)`; it is shared by `gather` and the sessions given it.
#[pyclass(module = "milink", name = "SqlServer", frozen)]
pub(crate) struct PySqlServer {
    pub(crate) side: Arc<SqlSide>,
}

#[pymethods]
impl PySqlServer {
    /// Connects to SQL Server and reads its name and build; raises on the first problem.
    ///
    /// `connection_string` is an ADO.NET connection string (`Server=tcp:host,port;User
    /// ID=...;Encrypt=Mandatory`); `password` is the SQL login's password when the string has
    /// none (give it once); `credential` a `Credential` for Microsoft Entra token login
    /// (`Authentication=ActiveDirectory...`); `trusted_ca` a CA certificate file (PEM or DER)
    /// to trust for the server's certificate; `master_key_password` the password of the
    /// database master key milink creates in `master` if there is none (generated when not
    /// given). No secret appears in a repr, a message or the journal.
    ///
    /// A string that does not parse, names no server or is empty (`""`, blanks, `";;"`)
    /// raises InvalidArgumentError; a server that cannot be reached ConnectError; a refused
    /// login AuthenticationError.
    #[staticmethod]
    #[pyo3(signature = (
        connection_string,
        *,
        password = None,
        credential = None,
        trusted_ca = None,
        master_key_password = None,
        application_name = None,
    ))]
    fn connect(
        py: Python<'_>,
        connection_string: &str,
        password: Option<String>,
        credential: Option<&Bound<'_, PyCredential>>,
        trusted_ca: Option<PathBuf>,
        master_key_password: Option<String>,
        application_name: Option<String>,
    ) -> PyResult<Self> {
        let credential = credential.map(|c| c.get().clone());
        let options = connect_options(
            connection_string,
            password,
            credential.as_ref(),
            trusted_ca,
            application_name,
        )?;
        let master = master_key_password.map(Secret::new);
        let side = wait(py, open_sql(options, master))??;
        Ok(PySqlServer {
            side: Arc::new(side),
        })
    }

    /// Awaitable `connect`.
    #[staticmethod]
    #[pyo3(signature = (
        connection_string,
        *,
        password = None,
        credential = None,
        trusted_ca = None,
        master_key_password = None,
        application_name = None,
    ))]
    fn connect_async<'py>(
        py: Python<'py>,
        connection_string: &str,
        password: Option<String>,
        credential: Option<&Bound<'_, PyCredential>>,
        trusted_ca: Option<PathBuf>,
        master_key_password: Option<String>,
        application_name: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let credential = credential.map(|c| c.get().clone());
        let options = connect_options(
            connection_string,
            password,
            credential.as_ref(),
            trusted_ca,
            application_name,
        )?;
        let master = master_key_password.map(Secret::new);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let side = open_sql(options, master).await?;
            Python::attach(|py| {
                PySqlServer {
                    side: Arc::new(side),
                }
                .into_py_any(py)
            })
        })
    }

    /// `@@SERVERNAME`, as read at connect.
    #[getter]
    fn server_name(&self) -> &str {
        &self.side.server_name
    }

    /// The build (`SERVERPROPERTY('ProductVersion')`), as read at connect.
    #[getter]
    fn version(&self) -> String {
        self.side.version.to_string()
    }

    /// The host connected to.
    #[getter]
    fn host(&self) -> &str {
        &self.side.host
    }

    /// The TCP port connected to.
    #[getter]
    fn port(&self) -> u16 {
        self.side.port
    }

    fn __repr__(&self) -> String {
        format!(
            "<SqlServer {} {} at {}:{}>",
            self.side.server_name, self.side.version, self.side.host, self.side.port
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Managed instance

/// A managed instance: its ARM adapter and, when given, its T-SQL endpoint.
pub(crate) struct InstanceSide {
    arm: ArmManagedInstance,
    tsql: Option<InstanceTsql>,
    pub(crate) id: InstanceId,
    fqdn: Option<String>,
    /// `databaseFormat`, as read.
    update_policy: Option<milink_core::names::UpdatePolicy>,
    endpoint: String,
    /// The lab serving it, when it is one served in this process.
    pub(crate) served: Option<Arc<ServedWorld>>,
    credential: String,
}

/// What `ManagedInstance(...)` was given, checked before anything is read.
struct InstanceArgs {
    id: InstanceId,
    credential: Arc<dyn TokenCredential>,
    credential_text: String,
    options: ArmOptions,
    endpoint: String,
    tsql: Option<ConnectOptions>,
}

fn instance_args(
    resource_id: &str,
    credential: Option<PyCredential>,
    endpoint: Option<String>,
    trusted_ca: Option<&Bound<'_, PyAny>>,
    tsql_connection_string: Option<&str>,
    tsql_password: Option<String>,
) -> PyResult<InstanceArgs> {
    let id = InstanceId::parse(resource_id.trim()).map_err(errors::py_err)?;
    let credential = credential.unwrap_or_else(PyCredential::environment);
    let built = credential.build()?;
    let mut builder = ArmOptions::builder();
    let endpoint = match endpoint {
        Some(e) => {
            let e = e.trim().trim_end_matches('/').to_owned();
            if !e.starts_with("https://") {
                return Err(invalid(format!(
                    "endpoint must be an https:// URL (the management endpoint), not {e:?}"
                )));
            }
            builder = builder.endpoint(e.clone());
            e
        }
        None => ArmOptions::default()
            .endpoint()
            .trim_end_matches('/')
            .to_owned(),
    };
    if let Some(ca) = trusted_ca {
        let der = match ca.extract::<Vec<u8>>() {
            Ok(bytes) if ca.is_instance_of::<pyo3::types::PyBytes>() => bytes,
            _ => {
                let path: PathBuf = ca.extract().map_err(|_| {
                    invalid("trusted_ca must be a path to a DER certificate file, or its bytes")
                })?;
                std::fs::read(&path)
                    .map_err(|e| invalid(format!("trusted_ca {}: {e}", path.display())))?
            }
        };
        builder = builder.trust_root_der(der);
    }
    let tsql = match (tsql_connection_string, tsql_password) {
        (Some(text), password) => Some(connect_options(text, password, None, None, None)?),
        (None, Some(_)) => {
            return Err(invalid(
                "tsql_password is the password of tsql_connection_string's login: give that \
                 connection string too",
            ));
        }
        (None, None) => None,
    };
    Ok(InstanceArgs {
        id,
        credential: built,
        credential_text: credential.describe(),
        options: builder.build(),
        endpoint,
        tsql,
    })
}

/// Builds the adapter and reads the instance once (its FQDN), so a wrong id, endpoint or
/// token is known at once.
async fn open_instance(args: InstanceArgs) -> Result<InstanceSide, PyErr> {
    let served = served_arm(&args.endpoint);
    let timer: Arc<dyn Timer> = match &served {
        Some(world) => world.timer(),
        None => Arc::new(SystemTimer),
    };
    let what = format!("managed instance {}", args.id);
    let mut arm =
        ArmManagedInstance::with_timer(args.id.clone(), args.credential, args.options, timer)
            .map_err(|e| port_error(&what, &e))?;
    if let Some(world) = &served {
        let in_flight = Arc::clone(world.in_flight());
        arm = arm.on_the_wire(Arc::new(move || Box::new(in_flight.enter())));
    }
    let instance = arm
        .managed_instance()
        .await
        .map_err(|e| port_error(&what, &e))?;
    let tsql = match args.tsql {
        None => None,
        Some(options) => {
            let where_ = format!(
                "{what}'s T-SQL endpoint at {}:{}",
                options.host(),
                options.port()
            );
            let connection = Connection::new(options, Arc::new(SystemTimer));
            connection.connect().await.map_err(|e| match e {
                milink_core::sqlserver::connection::SqlError::Connect(c) => {
                    connect_error(&where_, &c)
                }
                other => port_error(&where_, &PortError::from(other)),
            })?;
            Some(InstanceTsql::new(connection))
        }
    };
    Ok(InstanceSide {
        arm,
        tsql,
        id: args.id,
        fqdn: instance.properties.fully_qualified_domain_name,
        update_policy: instance
            .properties
            .database_format
            .as_ref()
            .and_then(|f| serde_json::to_value(f).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .and_then(|f| milink_core::names::UpdatePolicy::parse(&f).ok()),
        endpoint: args.endpoint,
        served,
        credential: args.credential_text,
    })
}

/// An Azure SQL Managed Instance through Azure Resource Manager, and optionally its T-SQL
/// endpoint (the reads ARM cannot make: the instance's first full backups, which a cutover
/// waits for, and its client sessions, which `check_workload_quiet` reads after a failover).
#[pyclass(module = "milink", name = "ManagedInstance", frozen)]
pub(crate) struct PyManagedInstance {
    pub(crate) side: Arc<InstanceSide>,
}

#[pymethods]
impl PyManagedInstance {
    /// The managed instance `resource_id`
    /// (`/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Sql/managedInstances/<mi>`),
    /// read once through ARM so that a wrong id, endpoint or credential raises here.
    ///
    /// `credential` is a `Credential` (default `Credential.environment()`); `endpoint` the
    /// management endpoint (default `https://management.azure.com`); `trusted_ca` a DER
    /// certificate (path or bytes) to trust for the endpoint besides the system's roots;
    /// `tsql_connection_string` and `tsql_password` the instance's T-SQL endpoint.
    ///
    /// A malformed id raises NameError; a refused token AuthenticationError; an instance that
    /// cannot be read ConnectError. Blocks with the GIL released; `connect_async` is the
    /// awaitable form.
    #[new]
    #[pyo3(signature = (
        resource_id,
        *,
        credential = None,
        endpoint = None,
        trusted_ca = None,
        tsql_connection_string = None,
        tsql_password = None,
    ))]
    fn new(
        py: Python<'_>,
        resource_id: &str,
        credential: Option<&Bound<'_, PyCredential>>,
        endpoint: Option<String>,
        trusted_ca: Option<&Bound<'_, PyAny>>,
        tsql_connection_string: Option<&str>,
        tsql_password: Option<String>,
    ) -> PyResult<Self> {
        let args = instance_args(
            resource_id,
            credential.map(|c| c.get().clone()),
            endpoint,
            trusted_ca,
            tsql_connection_string,
            tsql_password,
        )?;
        let side = wait(py, open_instance(args))??;
        Ok(PyManagedInstance {
            side: Arc::new(side),
        })
    }

    /// Awaitable `ManagedInstance(...)`.
    #[staticmethod]
    #[pyo3(signature = (
        resource_id,
        *,
        credential = None,
        endpoint = None,
        trusted_ca = None,
        tsql_connection_string = None,
        tsql_password = None,
    ))]
    fn connect_async<'py>(
        py: Python<'py>,
        resource_id: &str,
        credential: Option<&Bound<'_, PyCredential>>,
        endpoint: Option<String>,
        trusted_ca: Option<&Bound<'py, PyAny>>,
        tsql_connection_string: Option<&str>,
        tsql_password: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = instance_args(
            resource_id,
            credential.map(|c| c.get().clone()),
            endpoint,
            trusted_ca,
            tsql_connection_string,
            tsql_password,
        )?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let side = open_instance(args).await?;
            Python::attach(|py| {
                PyManagedInstance {
                    side: Arc::new(side),
                }
                .into_py_any(py)
            })
        })
    }

    /// The instance's ARM resource id.
    #[getter]
    fn resource_id(&self) -> String {
        self.side.id.to_string()
    }

    /// Its `fullyQualifiedDomainName`, as read.
    #[getter]
    fn fqdn(&self) -> Option<&str> {
        self.side.fqdn.as_deref()
    }

    /// The management endpoint.
    #[getter]
    fn endpoint(&self) -> &str {
        &self.side.endpoint
    }

    fn __repr__(&self) -> String {
        format!(
            "<ManagedInstance {} at {} ({}{})>",
            self.side.id,
            self.side.endpoint,
            self.side.credential,
            if self.side.tsql.is_some() {
                ", with its T-SQL endpoint"
            } else {
                ""
            }
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The ports a session drives

/// SQL Server's port for a session: the adapter, counting its calls on the wire when a lab in
/// this process serves it.
pub(crate) struct SourcePort(pub(crate) Arc<SqlSide>);

impl SourcePort {
    fn on_the_wire(&self) -> Option<milink_core::sim::wire::OnTheWire> {
        self.0.served.as_ref().map(|w| w.in_flight().enter())
    }
}

#[async_trait]
impl SourceServer for SourcePort {
    async fn execute(&self, op: &SourceOp) -> Result<SourceReply, PortError> {
        let _call = self.on_the_wire();
        self.0.adapter.execute(op).await
    }

    async fn link_state(
        &self,
        link: &LinkName,
        databases: &[DatabaseName],
    ) -> Result<SideView, PortError> {
        let _call = self.on_the_wire();
        self.0.adapter.link_state(link, databases).await
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        let _call = self.on_the_wire();
        self.0.adapter.workload_activity(databases).await
    }

    fn connection_warnings(&self) -> Vec<String> {
        self.0.adapter.connection_warnings()
    }
}

/// The managed instance's port for a session: ARM, and its T-SQL reads when given. On a served
/// lab, ARM calls start only once no call is on the wire, so the world sees the calls in the
/// order the session made them.
pub(crate) struct InstancePort(pub(crate) Arc<InstanceSide>);

impl InstancePort {
    async fn idle(&self) {
        if let Some(world) = &self.0.served {
            world.in_flight().idle().await;
        }
    }

    fn tsql(&self) -> Result<&InstanceTsql, PortError> {
        self.0.tsql.as_ref().ok_or_else(|| {
            PortError::permanent(
                milink_core::ports::UNSUPPORTED,
                "ARM cannot read this: give the managed instance's T-SQL endpoint \
                 (ManagedInstance(..., tsql_connection_string=..., tsql_password=...))",
            )
        })
    }
}

#[async_trait]
impl ManagedInstance for InstancePort {
    async fn begin(&self, op: &InstanceOp) -> Result<ArmReply, PortError> {
        self.idle().await;
        self.0.arm.begin(op).await
    }

    async fn poll(&self, operation: &OperationRef) -> Result<PollReply, PortError> {
        self.idle().await;
        self.0.arm.poll(operation).await
    }

    /// ARM's view, then (with the instance's T-SQL endpoint) its DMVs, merged and live, as
    /// `WithInstanceTsql` reads it; a T-SQL read that fails leaves ARM's view.
    async fn link_state(&self, link: &LinkName) -> Result<SideView, PortError> {
        self.idle().await;
        let arm = self.0.arm.link_state(link).await?;
        let Some(tsql) = self.0.tsql.as_ref().filter(|_| arm.exists) else {
            return Ok(arm);
        };
        let names: Vec<DatabaseName> = arm.databases.iter().map(|d| d.name.clone()).collect();
        let _call = self.0.served.as_ref().map(|w| w.in_flight().enter());
        match tsql.link_state(link, &names).await {
            Ok((live, policy)) => Ok(arm.merged_with_live(live, policy)),
            Err(e) => {
                tracing::warn!(
                    code = %e.code(),
                    "managed instance: the link's DMVs could not be read over T-SQL; using \
                     ARM's view, which lags"
                );
                Ok(arm)
            }
        }
    }

    async fn instance_fqdn(&self) -> Result<Option<milink_core::names::MiFqdn>, PortError> {
        self.idle().await;
        self.0.arm.instance_fqdn().await
    }

    async fn full_backups(&self, databases: &[DatabaseName]) -> Result<Vec<FullBackup>, PortError> {
        let tsql = self.tsql()?;
        let _call = self.0.served.as_ref().map(|w| w.in_flight().enter());
        tsql.full_backups(databases).await
    }

    async fn workload_activity(
        &self,
        databases: &[DatabaseName],
    ) -> Result<WorkloadActivity, PortError> {
        let tsql = self.tsql()?;
        let _call = self.0.served.as_ref().map(|w| w.in_flight().enter());
        tsql.workload_activity(databases).await
    }
}

/// The pair's identity as a journal records it: SQL Server's `@@SERVERNAME` and the
/// instance's resource id (lowercased: ARM compares ids without case).
pub(crate) fn pair_world(source: &SqlSide, target: &InstanceSide) -> String {
    format!(
        "SQL Server {} -> managed instance {}",
        source.server_name,
        target.id.to_string().to_ascii_lowercase()
    )
}

/// The session's timer for the pair: the serving lab's virtual clock when one lab in this
/// process serves both, else the system's.
pub(crate) fn pair_timer(source: &SqlSide, target: &InstanceSide) -> PyResult<Arc<dyn Timer>> {
    match (&source.served, &target.served) {
        (None, None) => Ok(Arc::new(SystemTimer)),
        (Some(a), Some(b)) if Arc::ptr_eq(a, b) => Ok(a.timer()),
        (Some(a), Some(b)) => Err(invalid(format!(
            "SQL Server is served by {} and the managed instance by {}: a link needs both \
             sides of one world",
            a.label, b.label
        ))),
        (Some(a), None) | (None, Some(a)) => Err(invalid(format!(
            "one side is served by {} and the other is not: a link needs both sides of one \
             world",
            a.label
        ))),
    }
}

/// Checks `spec` against the pair before anything is written: its SQL Server and instance
/// must be the ones connected, and the build must be able to host the link.
pub(crate) fn check_spec_against_pair(
    spec: &milink_core::lifecycle::LinkSpec,
    source: &SqlSide,
    target: &InstanceSide,
) -> PyResult<()> {
    if !spec
        .source
        .server
        .as_str()
        .eq_ignore_ascii_case(&source.server_name)
    {
        return Err(invalid(format!(
            "the spec's source.server is {} but the SQL Server connected is {}: the spec \
             describes another server",
            spec.source.server, source.server_name
        )));
    }
    if !spec
        .target
        .instance
        .to_string()
        .eq_ignore_ascii_case(&target.id.to_string())
    {
        return Err(invalid(format!(
            "the spec's target.instance is {} but the managed instance given is {}: the spec \
             describes another instance",
            spec.target.instance, target.id
        )));
    }
    Ok(())
}

/// Refuses a SQL Server whose build cannot host the link (before a journal is created), with
/// the update to install.
pub(crate) async fn check_can_host_link(source: &SqlSide) -> Result<(), PyErr> {
    let _call = source.served.as_ref().map(|w| w.in_flight().enter());
    source
        .adapter
        .check_can_host_link()
        .await
        .map(|_| ())
        .map_err(|e| match e {
            milink_core::sqlserver::link_host::LinkHostError::Read(p) => {
                port_error(&source.describe(), &p)
            }
            other => invalid(format!("{}: {other}", source.describe())),
        })
}

// ---------------------------------------------------------------------------------------------
// gather

/// What `gather` read, as `assess(**facts)` takes it.
struct Gathered {
    instance: milink_core::assess::InstanceFacts,
    databases: Vec<milink_core::assess::DatabaseFacts>,
    target: milink_core::assess::TargetFacts,
    skipped: Vec<(String, String)>,
    module_errors: Vec<(DatabaseName, String)>,
    /// When it was read: the serving lab's virtual now, else the system's.
    now: milink_core::time::Timestamp,
}

async fn gather_pair(
    source: Arc<SqlSide>,
    target: Arc<InstanceSide>,
    modules: ModuleScan,
) -> Result<Gathered, PyErr> {
    let facts = {
        let _call = source.served.as_ref().map(|w| w.in_flight().enter());
        let from = TdsFactSource::new(source.adapter.connection());
        let options = GatherOptions {
            modules,
            ..GatherOptions::default()
        };
        gather_instance_facts(&from, &options).await.map_err(|e| {
            let transient = e.is_transient();
            flagged(
                errors::GatherError::new_err(format!(
                    "the readiness facts of {} could not be read: {e}",
                    source.describe()
                )),
                transient,
                false,
                true,
            )
        })?
    };
    let target_facts = {
        if let Some(world) = &target.served {
            world.in_flight().idle().await;
        }
        target.arm.target_facts().await.map_err(|e| {
            flagged(
                errors::GatherError::new_err(format!(
                    "the facts of managed instance {} could not be read through ARM: {}",
                    target.id, e.message
                )),
                e.transient,
                false,
                true,
            )
        })?
    };
    Ok(Gathered {
        instance: facts.instance,
        databases: facts.databases,
        target: target_facts,
        skipped: facts.skipped_databases,
        module_errors: facts.module_scan_errors,
        now: match &source.served {
            Some(world) => world.now(),
            None => milink_core::time::Clock::now(&SystemTimer),
        },
    })
}

fn gathered_to_py(py: Python<'_>, g: &Gathered, failback: Option<bool>) -> PyResult<Py<PyAny>> {
    let facts = PyDict::new(py);
    facts.set_item("instance", to_py(py, &g.instance)?)?;
    facts.set_item("databases", to_py(py, &g.databases)?)?;
    facts.set_item("target", to_py(py, &g.target)?)?;
    let mut options = serde_json::json!({ "now": g.now });
    if let Some(failback) = failback {
        options["failback"] = serde_json::Value::Bool(failback);
    }
    facts.set_item("options", to_py(py, &options)?)?;
    // What was read only in part is said, without failing what was read.
    let warn = |message: String| -> PyResult<()> {
        py.import("warnings")?.call_method1("warn", (message,))?;
        Ok(())
    };
    for (name, reason) in &g.skipped {
        warn(format!(
            "gather: database {name:?} was left out of the facts: {reason}"
        ))?;
    }
    for (name, error) in &g.module_errors {
        warn(format!(
            "gather: the module text of database {name} could not be read, so the code-based \
             rules did not look at it: {error}"
        ))?;
    }
    facts.into_py_any(py)
}

fn module_scan(modules: &Bound<'_, PyAny>) -> PyResult<ModuleScan> {
    if let Ok(text) = modules.extract::<String>() {
        return match text.as_str() {
            "all" => Ok(ModuleScan::All),
            "off" => Ok(ModuleScan::Off),
            other => Err(invalid(format!(
                "modules must be \"all\", \"off\" or a list of database names, not {other:?}"
            ))),
        };
    }
    let names: Vec<String> = modules
        .extract()
        .map_err(|_| invalid("modules must be \"all\", \"off\" or a list of database names"))?;
    names
        .iter()
        .map(|n| DatabaseName::new(n).map_err(errors::py_err))
        .collect::<PyResult<Vec<_>>>()
        .map(ModuleScan::Only)
}

/// The readiness facts of a real pair, as `assess` takes them: `{"instance", "databases",
/// "target", "options", "gathered"}` (see `gather`).
#[pyfunction]
#[pyo3(signature = (source, target, *, modules = None, failback = None))]
pub(crate) fn gather(
    py: Python<'_>,
    source: &Bound<'_, PySqlServer>,
    target: &Bound<'_, PyManagedInstance>,
    modules: Option<&Bound<'_, PyAny>>,
    failback: Option<bool>,
) -> PyResult<Py<PyAny>> {
    let scan = modules.map(module_scan).transpose()?.unwrap_or_default();
    let gathered = wait(
        py,
        gather_pair(
            Arc::clone(&source.get().side),
            Arc::clone(&target.get().side),
            scan,
        ),
    )??;
    gathered_to_py(py, &gathered, failback)
}

/// Awaitable `gather`.
#[pyfunction]
#[pyo3(signature = (source, target, *, modules = None, failback = None))]
pub(crate) fn gather_async<'py>(
    py: Python<'py>,
    source: &Bound<'py, PySqlServer>,
    target: &Bound<'py, PyManagedInstance>,
    modules: Option<&Bound<'py, PyAny>>,
    failback: Option<bool>,
) -> PyResult<Bound<'py, PyAny>> {
    let scan = modules.map(module_scan).transpose()?.unwrap_or_default();
    let (source, target) = (
        Arc::clone(&source.get().side),
        Arc::clone(&target.get().side),
    );
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let gathered = gather_pair(source, target, scan).await?;
        Python::attach(|py| gathered_to_py(py, &gathered, failback))
    })
}

// ---------------------------------------------------------------------------------------------
// link_spec

/// A link spec for `database` of a real pair, with the documented conventions (see
/// `link_spec` in Python).
#[allow(clippy::too_many_arguments)] // the Python signature's keyword arguments
fn spec_for_pair(
    source: &SqlSide,
    target: &InstanceSide,
    database: &str,
    link: Option<&str>,
    two_way: Option<bool>,
    endpoint_host: Option<&str>,
    endpoint_port: u16,
) -> PyResult<milink_core::lifecycle::LinkSpec> {
    use milink_core::lifecycle::{
        FailoverMode, LinkSpec, MachineOptions, SeedingMode, Side, SourceSpec, TargetSpec,
    };
    use milink_core::names::{
        AgName, CertificateName, EndpointHost, EndpointName, LinkMode, LinkName as Name, MiFqdn,
        ServerName, TcpPort,
    };
    let name = |e: milink_core::names::NameError| errors::py_err(e);
    let database = DatabaseName::new(database).map_err(name)?;
    let fqdn = target.fqdn.as_deref().ok_or_else(|| {
        invalid(format!(
            "managed instance {} reported no fullyQualifiedDomainName: it may still be \
             provisioning",
            target.id
        ))
    })?;
    let policy = target.update_policy.ok_or_else(|| {
        invalid(format!(
            "managed instance {} reported no databaseFormat (update policy)",
            target.id
        ))
    })?;
    let can_fail_back = source.version.capabilities().failback_allowed_with(policy);
    let two_way = match two_way {
        None => can_fail_back,
        Some(true) if !can_fail_back => {
            return Err(invalid(format!(
                "two_way=True: SQL Server {} (build {}) with the instance's update policy {policy} \
                 cannot fail back; leave two_way unset for a one-way link",
                source.server_name, source.version
            )));
        }
        Some(asked) => asked,
    };
    let short_server: String = source
        .server_name
        .chars()
        .map(|c| if c == '\\' { '_' } else { c })
        .collect();
    let now = match &source.served {
        Some(world) => world.now(),
        None => milink_core::time::Clock::now(&SystemTimer),
    };
    let expiry =
        milink_core::time::Date::from_days_since_epoch(now.date().days_since_epoch() + 365);
    let link = match link {
        Some(l) => Name::new(l),
        None => Name::new(format!("DAG_{database}")),
    }
    .map_err(name)?;
    Ok(LinkSpec {
        link,
        mode: LinkMode::SingleDatabase,
        databases: vec![database.clone()],
        initial_primary: Side::SqlServer,
        failover_mode: if two_way {
            FailoverMode::Manual
        } else {
            FailoverMode::None
        },
        seeding_mode: SeedingMode::Automatic,
        source: SourceSpec {
            server: ServerName::new(source.server_name.as_str()).map_err(name)?,
            version: source.version,
            endpoint_host: EndpointHost::new(endpoint_host.unwrap_or(&source.host))
                .map_err(name)?,
            endpoint_port: TcpPort::new(endpoint_port).map_err(name)?,
            endpoint_name: EndpointName::new("database_mirroring_endpoint").map_err(name)?,
            certificate: CertificateName::new(format!("Cert_{short_server}_endpoint"))
                .map_err(name)?,
            certificate_expiry: expiry,
            ag: AgName::new(format!("AG_{database}")).map_err(name)?,
        },
        target: TargetSpec {
            instance: target.id.clone(),
            fqdn: MiFqdn::new(fqdn).map_err(name)?,
            ag: AgName::new(format!("AG_{database}_MI")).map_err(name)?,
            update_policy: policy,
        },
        session_timeout_s: 20,
        options: MachineOptions::default(),
        route: milink_core::lifecycle::LinkRoute::Direct,
    })
}

/// A link spec for `database` of the pair, as a dict for `LinkSession.create` (see the stub).
#[pyfunction]
#[pyo3(signature = (source, target, database, *, link = None, two_way = None, endpoint_host = None, endpoint_port = 5022))]
#[allow(clippy::too_many_arguments)] // the Python signature's keyword arguments
pub(crate) fn link_spec<'py>(
    py: Python<'py>,
    source: &Bound<'py, PySqlServer>,
    target: &Bound<'py, PyManagedInstance>,
    database: &str,
    link: Option<&str>,
    two_way: Option<bool>,
    endpoint_host: Option<&str>,
    #[pyo3(from_py_with = crate::args::port)] endpoint_port: u16,
) -> PyResult<Bound<'py, PyAny>> {
    let spec = spec_for_pair(
        &source.get().side,
        &target.get().side,
        database,
        link,
        two_way,
        endpoint_host,
        endpoint_port,
    )?;
    to_py(py, &spec)
}
