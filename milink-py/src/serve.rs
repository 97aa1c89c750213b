//! `Lab.serve()`: a lab's world on loopback, for the real connectors. SQL Server and the
//! managed instance's T-SQL endpoint answer over TDS (TLS with a certificate generated at
//! start), the instance's ARM half over HTTPS, all from the lab's one simulated world.
//!
//! The servers are in this process, so the pair they serve keeps the lab's virtual time: a
//! `SqlServer` or `ManagedInstance` connected to one of them knows it (the [`registry`]), and a
//! session on such a pair sleeps on the lab's clock, which waits while a call is on the wire
//! ([`WireClock`]), as `tailspin --wire` does. Hours of seeding take moments, as on the lab.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use milink_core::Error;
use milink_core::lifecycle::Side;
use milink_core::redirect::connection_string::ConnectionString;
use milink_core::secret::Secret;
use milink_core::sim::arm_https::{ArmHttpsServer, ArmServerConfig};
use milink_core::sim::sql::handler::SimSqlHandler;
use milink_core::sim::tds::{TdsServer, TdsServerConfig};
use milink_core::sim::wire::{InFlight, WireClock};
use milink_core::sim::{Lab, Sim};
use milink_core::time::Timer;
use pyo3::prelude::*;

use crate::errors::invalid;
use crate::runtime::{block_on, lock, runtime};

/// The SQL login the served servers accept.
pub(crate) const USER: &str = "milink";

/// A lab's world as served on loopback: what a connector to one of its servers shares with
/// the others, so that a session on the pair runs in the world's virtual time.
pub(crate) struct ServedWorld {
    sim: Sim,
    in_flight: Arc<InFlight>,
    /// For messages: which lab.
    pub(crate) label: String,
}

impl ServedWorld {
    /// The session's timer on this world: its virtual clock, waiting for calls on the wire.
    pub(crate) fn timer(&self) -> Arc<dyn Timer> {
        Arc::new(WireClock::new(
            self.sim.clock(),
            Arc::clone(&self.in_flight),
        ))
    }

    /// The world's virtual now.
    pub(crate) fn now(&self) -> milink_core::time::Timestamp {
        self.sim.now()
    }

    /// The count of calls on the wire, which the ports keep.
    pub(crate) fn in_flight(&self) -> &Arc<InFlight> {
        &self.in_flight
    }
}

/// Where a served world answers.
#[derive(Clone, PartialEq, Eq)]
enum Address {
    /// A TDS server on `127.0.0.1:port`.
    Tds(u16),
    /// The ARM server at this base URL.
    Arm(String),
}

/// The servers of live served worlds in this process, by address.
fn registry() -> &'static Mutex<Vec<(Address, Weak<ServedWorld>)>> {
    static SERVED: Mutex<Vec<(Address, Weak<ServedWorld>)>> = Mutex::new(Vec::new());
    &SERVED
}

fn find(address: &Address) -> Option<Arc<ServedWorld>> {
    let mut served = lock(registry());
    served.retain(|(_, world)| world.strong_count() > 0);
    served
        .iter()
        .find(|(a, _)| a == address)
        .and_then(|(_, w)| w.upgrade())
}

/// The served world answering TDS at `host:port`, if one in this process does.
pub(crate) fn served_tds(host: &str, port: u16) -> Option<Arc<ServedWorld>> {
    let loopback = matches!(
        host.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "." | "(local)"
    );
    if !loopback {
        return None;
    }
    find(&Address::Tds(port))
}

/// The served world answering ARM at `endpoint`, if one in this process does.
pub(crate) fn served_arm(endpoint: &str) -> Option<Arc<ServedWorld>> {
    find(&Address::Arm(endpoint.trim_end_matches('/').to_owned()))
}

/// The servers, kept alive while served.
struct Servers {
    world: Arc<ServedWorld>,
    sql: TdsServer,
    instance_tsql: TdsServer,
    arm: ArmHttpsServer,
}

/// A lab's world served on loopback: SQL Server and the managed instance's T-SQL endpoint
/// over TDS (the SQL login `milink`, or any Microsoft Entra access token), the instance's ARM
/// API over HTTPS (the served token only). Connect the real connectors with what it
/// gives; the servers run until `stop()` (or the end of a `with` block).
#[pyclass(module = "milink", name = "ServedLab", frozen)]
pub(crate) struct PyServedLab {
    servers: Mutex<Option<Servers>>,
    /// The directory the certificates are written to.
    directory: PathBuf,
    /// Whether `directory` was made here, to be removed on stop.
    owns_directory: bool,
    connection_string: String,
    instance_connection_string: String,
    sql_password: Secret,
    instance_password: Secret,
    token: Secret,
    resource_id: String,
    arm_endpoint: String,
    arm_ca_file: PathBuf,
    sql_ca_file: PathBuf,
    instance_ca_file: PathBuf,
}

fn tds_connection_string(port: u16, ca: &Path) -> PyResult<String> {
    let mut cs = ConnectionString::new();
    let text = ca.to_str().ok_or_else(|| {
        invalid(format!(
            "the certificate path {} is not valid UTF-8: choose another directory",
            ca.display()
        ))
    })?;
    for (key, value) in [
        ("Server", format!("tcp:127.0.0.1,{port}")),
        ("User ID", USER.to_owned()),
        ("Encrypt", "Mandatory".to_owned()),
        ("Server Certificate", text.to_owned()),
    ] {
        cs.set(key, &value)
            .map_err(|e| invalid(format!("the served connection string: {e}")))?;
    }
    Ok(cs.expose())
}

/// The temporary directories of served labs still running, removed at the interpreter's exit
/// if nothing stopped or dropped them before (a notebook that ends without `stop()`).
fn owned_directories() -> &'static Mutex<Vec<PathBuf>> {
    static OWNED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    &OWNED
}

fn forget_directory(dir: &Path) {
    lock(owned_directories()).retain(|d| d != dir);
}

/// Removes the temporary directories of served labs left running (registered with `atexit`).
#[pyfunction]
pub(crate) fn _remove_served_directories() {
    for dir in lock(owned_directories()).drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Registers [`_remove_served_directories`] with `atexit`, once.
fn remove_at_exit(py: Python<'_>) -> PyResult<()> {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    REGISTERED.call_once(|| {
        result = (|| {
            let cleanup = wrap_pyfunction!(_remove_served_directories, py)?;
            py.import("atexit")?.call_method1("register", (cleanup,))?;
            Ok(())
        })();
    });
    result
}

/// A fresh directory under the system's temporary directory.
fn temporary_directory() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "milink-served-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "no fresh temporary directory could be made",
    ))
}

fn io(what: &str, e: std::io::Error) -> PyErr {
    invalid(format!("{what}: {e}"))
}

/// Serves `lab`'s world (see `Lab.serve`).
pub(crate) fn serve(
    py: Python<'_>,
    lab: &Lab,
    directory: Option<PathBuf>,
) -> PyResult<PyServedLab> {
    let (directory, owns_directory) = match directory {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| io(&format!("directory {}", dir.display()), e))?;
            (dir, false)
        }
        None => {
            remove_at_exit(py)?;
            let dir = temporary_directory().map_err(|e| io("a temporary directory", e))?;
            lock(owned_directories()).push(dir.clone());
            (dir, true)
        }
    };
    let secret = || {
        milink_core::sqlserver::password::generate()
            .map_err(|e| invalid(format!("a password for the served lab: {e}")))
    };
    let (sql_password, instance_password, token) = (secret()?, secret()?, secret()?);
    let sim = lab.sim.clone();
    let started = {
        let (sim, sql_password, instance_password, token) = (
            sim.clone(),
            sql_password.clone(),
            instance_password.clone(),
            token.clone(),
        );
        block_on(py, None, async move {
            let tds = |side: Side, password: Secret, name: &str| {
                let handler = Arc::new(
                    SimSqlHandler::new(sim.clone(), side, USER, password).accepting_access_tokens(),
                );
                let config = TdsServerConfig {
                    server_name: name.to_owned(),
                    ..TdsServerConfig::default()
                };
                TdsServer::start(config, handler)
            };
            let failed = |what: &str, e: &dyn std::fmt::Display| {
                Error::InvalidArgument(format!("the served {what} could not start: {e}"))
            };
            let sql = tds(Side::SqlServer, sql_password, "sql-server")
                .await
                .map_err(|e| failed("SQL Server", &e))?;
            let instance_tsql = tds(Side::ManagedInstance, instance_password, "managed-instance")
                .await
                .map_err(|e| failed("managed instance's T-SQL endpoint", &e))?;
            let arm = ArmHttpsServer::start(ArmServerConfig::with_token(token), sim.clone())
                .await
                .map_err(|e| failed("ARM API", &e))?;
            Ok((sql, instance_tsql, arm))
        })
    };
    let (sql, instance_tsql, arm) = match started {
        Ok(servers) => servers,
        Err(e) => {
            if owns_directory {
                forget_directory(&directory);
                let _ = std::fs::remove_dir_all(&directory);
            }
            return Err(e);
        }
    };
    let write = |name: &str, der: &[u8]| -> PyResult<PathBuf> {
        let file = directory.join(name);
        std::fs::write(&file, der).map_err(|e| io(&format!("writing {}", file.display()), e))?;
        Ok(file)
    };
    let sql_ca_file = write(
        &format!("sql-server-{}.der", sql.addr().port()),
        sql.certificate_der(),
    )?;
    let instance_ca_file = write(
        &format!("managed-instance-{}.der", instance_tsql.addr().port()),
        instance_tsql.certificate_der(),
    )?;
    let arm_ca_file = write(
        &format!("arm-{}.der", arm.addr().port()),
        arm.certificate_der(),
    )?;
    let seed = sim.with_world(|w| w.config.seed);
    let world = Arc::new(ServedWorld {
        sim,
        in_flight: InFlight::new(),
        label: format!(
            "the lab {} -> {} (seed {seed}) served on loopback",
            lab.topology.source.server, lab.topology.instance.id
        ),
    });
    let arm_endpoint = arm.base_url().trim_end_matches('/').to_owned();
    {
        let mut served = lock(registry());
        for address in [
            Address::Tds(sql.addr().port()),
            Address::Tds(instance_tsql.addr().port()),
            Address::Arm(arm_endpoint.clone()),
        ] {
            served.push((address, Arc::downgrade(&world)));
        }
    }
    Ok(PyServedLab {
        connection_string: tds_connection_string(sql.addr().port(), &sql_ca_file)?,
        instance_connection_string: tds_connection_string(
            instance_tsql.addr().port(),
            &instance_ca_file,
        )?,
        servers: Mutex::new(Some(Servers {
            world,
            sql,
            instance_tsql,
            arm,
        })),
        directory,
        owns_directory,
        sql_password,
        instance_password,
        token,
        resource_id: lab.spec.target.instance.to_string(),
        arm_endpoint,
        arm_ca_file,
        sql_ca_file,
        instance_ca_file,
    })
}

#[pymethods]
impl PyServedLab {
    /// SQL Server's connection string (the SQL login, TLS required, the served certificate
    /// trusted through `Server Certificate`), without the password: give `password`.
    #[getter]
    fn connection_string(&self) -> &str {
        &self.connection_string
    }

    /// The SQL login's password.
    #[getter]
    fn password(&self) -> &str {
        self.sql_password.expose()
    }

    /// The managed instance's T-SQL endpoint's connection string, without the password.
    #[getter]
    fn instance_connection_string(&self) -> &str {
        &self.instance_connection_string
    }

    /// The password of the managed instance's T-SQL login.
    #[getter]
    fn instance_password(&self) -> &str {
        self.instance_password.expose()
    }

    /// The managed instance's ARM resource id.
    #[getter]
    fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// The ARM endpoint (`https://127.0.0.1:<port>`).
    #[getter]
    fn arm_endpoint(&self) -> &str {
        &self.arm_endpoint
    }

    /// The bearer token the ARM endpoint accepts (for `Credential.token`).
    #[getter]
    fn token(&self) -> &str {
        self.token.expose()
    }

    /// The ARM endpoint's certificate (DER), to trust: `ManagedInstance(..., trusted_ca=...)`.
    #[getter]
    fn arm_ca_file(&self) -> PathBuf {
        self.arm_ca_file.clone()
    }

    /// SQL Server's certificate (DER); the connection string already trusts it.
    #[getter]
    fn sql_ca_file(&self) -> PathBuf {
        self.sql_ca_file.clone()
    }

    /// The instance's T-SQL endpoint's certificate (DER); its connection string trusts it.
    #[getter]
    fn instance_ca_file(&self) -> PathBuf {
        self.instance_ca_file.clone()
    }

    /// Whether the servers still run.
    #[getter]
    fn serving(&self) -> bool {
        lock(&self.servers).is_some()
    }

    /// Stops the servers (connections to them fail from now on) and removes the certificates'
    /// directory if it was made for them. Stopping twice does nothing.
    fn stop(&self, py: Python<'_>) {
        let Some(servers) = lock(&self.servers).take() else {
            return;
        };
        {
            let world = Arc::downgrade(&servers.world);
            lock(registry()).retain(|(_, w)| !w.ptr_eq(&world));
        }
        py.detach(|| {
            runtime().block_on(async move {
                servers.sql.shutdown().await;
                servers.instance_tsql.shutdown().await;
                servers.arm.shutdown().await;
            })
        });
        if self.owns_directory {
            forget_directory(&self.directory);
            let _ = std::fs::remove_dir_all(&self.directory);
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.stop(py);
        false
    }

    fn __repr__(&self) -> String {
        match lock(&self.servers).as_ref() {
            Some(s) => format!(
                "<ServedLab sql-server=127.0.0.1:{} instance-tsql=127.0.0.1:{} arm={}>",
                s.sql.addr().port(),
                s.instance_tsql.addr().port(),
                self.arm_endpoint
            ),
            None => "<ServedLab stopped>".to_owned(),
        }
    }
}

impl Drop for PyServedLab {
    fn drop(&mut self) {
        if self.owns_directory {
            forget_directory(&self.directory);
            let _ = std::fs::remove_dir_all(&self.directory);
        }
    }
}
