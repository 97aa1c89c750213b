//! `Lab`: the simulator's seeded, virtual-time world, and sessions on it.

use std::path::PathBuf;
use std::sync::Arc;

use milink_core::assess::{DatabaseFacts, InstanceFacts, TargetFacts};
use milink_core::journal::FileJournal;
use milink_core::lifecycle::{LinkSpec, Side};
use milink_core::names::DatabaseName;
use milink_core::redirect::{EndpointChoice, RedirectError, RedirectOptions, RedirectTarget};
use milink_core::session::SessionError as CoreSessionError;
use milink_core::sim::{Lab, SimConfig};
use milink_core::time::Timer;
use milink_core::{Error, Session};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args::callback;
use crate::convert::{from_py, from_py_named, to_py};
use crate::errors::py_err as error;
use crate::session::{PyLinkSession, session_options};

/// A simulated SQL Server and managed instance sharing a virtual clock, and the link spec for
/// one of its databases. Sessions on a lab run in virtual time: hours of seeding take moments.
#[pyclass(module = "milink", name = "Lab", frozen)]
pub(crate) struct PyLab {
    lab: Lab,
}

impl PyLab {
    /// `name` as a database of the lab's world, or the link's first database.
    fn database_named(&self, name: Option<&str>) -> PyResult<DatabaseName> {
        let Some(name) = name else {
            return self
                .lab
                .spec
                .databases
                .first()
                .cloned()
                .ok_or_else(|| crate::errors::invalid("the lab's link names no database"));
        };
        let database = DatabaseName::new(name).map_err(|e| error(Error::from(e)))?;
        if self.lab.sim.snapshot(Side::SqlServer, &database).is_none()
            && self
                .lab
                .sim
                .snapshot(Side::ManagedInstance, &database)
                .is_none()
        {
            return Err(crate::errors::invalid(format!(
                "the lab has no database {database}"
            )));
        }
        Ok(database)
    }

    /// This lab's world as sessions record it: its servers and its seed.
    fn world(&self) -> String {
        let seed = self.lab.sim.with_world(|w| w.config.seed);
        format!(
            "the lab {} -> {} (seed {seed})",
            self.lab.topology.source.server, self.lab.topology.instance.id
        )
    }

    fn parts(&self) -> (Lab, Arc<dyn Timer>) {
        let lab = self.lab.clone();
        let timer: Arc<dyn Timer> = Arc::new(lab.sim.clock());
        (lab, timer)
    }
}

/// The redirect keyword arguments of `Lab.session` and `LinkSession.resume_from`.
pub(crate) struct Redirect<'a> {
    /// The Python callable called after each role change.
    pub(crate) hook: Option<Py<PyAny>>,
    /// The workload's SQL Server connection string, as the user gave it.
    pub(crate) connection_string: Option<&'a str>,
    /// The managed instance's public endpoint instead of its VNet-local one.
    pub(crate) public_endpoint: bool,
}

impl Redirect<'_> {
    /// The core's options (authentication kept as written), checked against `spec` by
    /// computing the target for each side, so that a string the session could not use (one
    /// that does not parse, or names no server, or is empty) is refused before anything is
    /// opened or written.
    /// The connection string parsed, without a spec to check it against yet.
    fn parsed(&self) -> Result<(), RedirectError> {
        if let Some(text) = self.connection_string {
            RedirectOptions::from_connection_string(text)?;
        }
        Ok(())
    }

    fn options(&self, spec: &LinkSpec) -> Result<RedirectOptions, RedirectError> {
        let given = match self.connection_string {
            Some(text) => RedirectOptions::from_connection_string(text)?,
            None => RedirectOptions::default(),
        };
        let options = RedirectOptions {
            endpoint: if self.public_endpoint {
                EndpointChoice::Public
            } else {
                EndpointChoice::VnetLocal
            },
            ..given
        };
        for side in [Side::ManagedInstance, Side::SqlServer] {
            RedirectTarget::for_primary(spec, side, &options)?;
        }
        Ok(options)
    }
}

/// How [`open`] opens the journal.
#[derive(Clone, Copy)]
pub(crate) enum Open {
    /// A new link: the journal must not exist.
    Create,
    /// The link in the journal; with `repair`, a torn last record is dropped first.
    Resume { repair: bool },
}

impl Open {
    /// `if_exists` as `Lab.session` and `LinkSession.create` take it.
    pub(crate) fn from_if_exists(if_exists: &str, journal: &std::path::Path) -> PyResult<Open> {
        match if_exists {
            "error" => Ok(Open::Create),
            "resume" if journal.exists() => Ok(Open::Resume { repair: false }),
            "resume" => Ok(Open::Create),
            other => Err(crate::errors::invalid(format!(
                "if_exists must be \"error\" or \"resume\", not {other:?}"
            ))),
        }
    }
}

/// The pair a session drives: its two ports, the timer it waits on, the world its journal
/// records, and the spec of a new link (or, on resume, the spec the redirect settings are
/// checked against before the journal is read; `None`: after).
pub(crate) struct Pair<S, M> {
    pub(crate) source: Arc<S>,
    pub(crate) instance: Arc<M>,
    pub(crate) timer: Arc<dyn Timer>,
    pub(crate) world: String,
    pub(crate) spec: Option<LinkSpec>,
}

/// The arguments every way of opening a session shares (`Lab.session`, `LinkSession.create`,
/// `LinkSession.resume_from`).
pub(crate) struct OpenArgs<'a, 'py> {
    pub(crate) journal: PathBuf,
    pub(crate) how: Open,
    pub(crate) redirect: Redirect<'a>,
    pub(crate) on_progress: Option<Py<PyAny>>,
    pub(crate) progress_detail: &'a str,
    pub(crate) options: Option<&'a Bound<'py, PyAny>>,
    pub(crate) lock_dir: Option<PathBuf>,
}

/// Opens a session on `pair`: a new link or the link in `journal`, as `args.how` says.
/// `lock_dir`, when given, replaces the options' `lock_dir`. Every argument is checked before
/// anything is opened or written.
pub(crate) fn open<S, M>(
    py: Python<'_>,
    pair: Pair<S, M>,
    args: OpenArgs<'_, '_>,
) -> PyResult<PyLinkSession>
where
    S: milink_core::ports::SourceServer + 'static,
    M: milink_core::ports::ManagedInstance + 'static,
{
    let OpenArgs {
        journal,
        how,
        mut redirect,
        on_progress,
        progress_detail,
        options,
        lock_dir,
    } = args;
    redirect.hook = callback(py, "redirect_hook", "the target dict", redirect.hook)?;
    let on_progress = callback(py, "on_progress", "an event dict", on_progress)?;
    let detail = crate::runtime::Detail::parse(progress_detail)?;
    let mut options = session_options(options)?;
    if lock_dir.is_some() {
        options.lock_dir = lock_dir;
    }
    // The pair's world, so its journals are never resumed on another pair.
    if options.world.is_none() {
        options.world = Some(pair.world.clone());
    }
    let checked = match &pair.spec {
        Some(spec) => Some(redirect.options(spec).map_err(|e| error(Error::from(e)))?),
        None => {
            // Parsed now, checked against the journal's spec once it is read.
            redirect.parsed().map_err(|e| error(Error::from(e)))?;
            None
        }
    };
    let Pair {
        source,
        instance,
        timer,
        spec,
        ..
    } = pair;
    let clock: Arc<dyn milink_core::time::Clock> = timer.clone();
    enum Todo {
        Create(Box<LinkSpec>),
        Resume { repair: bool },
    }
    let todo = match (how, spec) {
        (Open::Create, Some(spec)) => Todo::Create(Box::new(spec)),
        (Open::Create, None) => {
            return Err(crate::errors::invalid("a new link needs its spec"));
        }
        (Open::Resume { repair }, _) => Todo::Resume { repair },
    };
    let opened = py
        .detach(move || {
            crate::errors::guarded(move || match todo {
                Todo::Resume { repair } => {
                    let (journal, repaired) = if repair {
                        FileJournal::open_repairing(&journal)
                    } else {
                        FileJournal::open(&journal).map(|j| (j, None))
                    }
                    .map_err(CoreSessionError::from)?;
                    Session::resume(journal, source, instance, timer, options)
                        .map(|s| (s, repaired))
                }
                Todo::Create(spec) => {
                    let file = FileJournal::create(&journal).map_err(CoreSessionError::from)?;
                    let created = Session::create(*spec, source, instance, file, timer, options);
                    if created.is_err() {
                        // The file was created just now and the refused session dropped it: a
                        // refusal (another session drives the link) leaves no journal behind.
                        let _ = std::fs::remove_file(&journal);
                    }
                    created.map(|s| (s, None))
                }
            })
        })
        .map_err(|p| crate::errors::from_panic(p.as_ref()))?;
    let (session, repaired) = opened.map_err(|e| error(Error::from(e)))?;
    let redirect_options = match checked {
        Some(options) => options,
        // Dropping the session on a refusal releases its journal and lock; nothing was written.
        None => redirect
            .options(session.machine().spec())
            .map_err(|e| error(Error::from(e)))?,
    };
    Ok(PyLinkSession::wrap(
        session,
        redirect.hook,
        redirect_options,
        crate::runtime::Progress {
            callback: on_progress,
            detail,
            clock,
        },
        repaired,
    ))
}

/// The lab's pair: its simulated ports, its virtual clock and its world; `spec` the lab's.
pub(crate) fn lab_pair(
    lab: &PyLab,
) -> Pair<milink_core::sim::SimSqlServer, milink_core::sim::SimManagedInstance> {
    let world = lab.world();
    let (lab, timer) = lab.parts();
    Pair {
        source: Arc::new(lab.sim.sql_server()),
        instance: Arc::new(lab.sim.managed_instance()),
        timer,
        world,
        spec: Some(lab.spec.clone()),
    }
}

#[pymethods]
impl PyLab {
    /// The Tailspin lab: TailspinSql (SQL Server 2022) with ToyStore (ready) and Customer360
    /// (not ready), the General Purpose instance `tailspin-mi`, and a two-way link spec for
    /// ToyStore.
    #[staticmethod]
    #[pyo3(signature = (seed = 7))]
    fn tailspin(#[pyo3(from_py_with = crate::args::seed)] seed: u64) -> PyResult<Self> {
        let lab = Lab::tailspin(seed).map_err(error)?;
        Ok(PyLab { lab })
    }

    /// A lab built from an assessment's facts (dicts as for `assess`), to rehearse linking
    /// `database` of that estate.
    #[staticmethod]
    #[pyo3(signature = (instance, databases, target, database, *, seed = 7))]
    fn from_facts(
        instance: &Bound<'_, PyAny>,
        databases: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
        database: &str,
        #[pyo3(from_py_with = crate::args::seed)] seed: u64,
    ) -> PyResult<Self> {
        let instance: InstanceFacts = from_py("instance facts", instance)?;
        let databases: Vec<DatabaseFacts> = from_py_named("database facts", "database", databases)?;
        let target: TargetFacts = from_py("target facts", target)?;
        let database = DatabaseName::new(database).map_err(error)?;
        let lab = Lab::from_facts(
            &instance,
            &databases,
            &target,
            SimConfig::with_seed(seed),
            &database,
        )
        .map_err(error)?;
        Ok(PyLab { lab })
    }

    /// The database the lab's link carries.
    #[getter]
    fn database(&self) -> String {
        self.lab.database.to_string()
    }

    /// The link's name.
    #[getter]
    fn link(&self) -> String {
        self.lab.spec.link.to_string()
    }

    /// The link spec sessions on this lab start from, as a dict.
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.lab.spec)
    }

    /// Virtual now, in milliseconds since the Unix epoch.
    #[getter]
    fn now(&self) -> u64 {
        self.lab.sim.now().as_millis()
    }

    /// The world's facts as readiness sees them now: `{"instance", "databases", "target",
    /// "options"}` for `assess(**lab.facts())`.
    fn facts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        world_facts(py, &self.lab)
    }

    /// A new link session journaled to `journal` (which must not exist yet).
    ///
    /// `redirect_hook(target)` is called after each role change with `{"link", "redirect_id",
    /// "primary", "host", "port", "connection_string", "notes"}`: where the workload must
    /// connect now. It is called at least once per redirect: again after a failure and
    /// `resume()`, and again when a crash came between its return and the journaling of its
    /// success; every call for one redirect has the same `redirect_id`, so a repeat can be
    /// recognised and ignored.
    /// `connection_string` is the SQL Server connection string the workload uses: after a
    /// failover the hook receives it pointed at the managed instance (`Data Source` set to its
    /// VNet-local FQDN on port 1433, or with `public_endpoint=True` its public endpoint on port
    /// 3342; host-bound keys removed, every other key kept; authentication kept as written, the
    /// notes say what to check), after a failback the original string. The hook's
    /// `connection_string` is the real text, password included if the string has one; milink
    /// never logs or journals it. A string that does not parse, names no server or is empty
    /// raises InvalidArgumentError and nothing is created.
    ///
    /// `on_progress(event)` is called in place with each event while an operation runs, each
    /// event with its time `at` (milliseconds since the Unix epoch; virtual on the lab); with
    /// `progress_detail="phases"` (the default) the callback does not get the steps' start and
    /// finish, with `"steps"` it gets every event;
    /// `options` is a `SessionOptions` dict (retry, timeouts, seed, lock_dir). Both callbacks
    /// must be plain functions, run to completion: one that is not callable or is an `async
    /// def` raises ArgumentTypeError and nothing is created.
    ///
    /// One session per link: the session locks a file named after the link in `lock_dir`
    /// (default: the journal's directory) until it is closed or dropped; a second session on
    /// the same link, in this process or another, raises LinkLockedError and leaves no journal.
    ///
    /// `if_exists` says what an existing `journal` means: `"error"` (the default) raises
    /// JournalError and touches nothing; `"resume"` reopens the link it holds, as
    /// `LinkSession.resume_from(journal, lab)` does (a notebook cell run again).
    #[pyo3(signature = (
        journal,
        *,
        redirect_hook = None,
        on_progress = None,
        options = None,
        connection_string = None,
        public_endpoint = false,
        lock_dir = None,
        if_exists = "error",
        progress_detail = "phases",
    ))]
    #[allow(clippy::too_many_arguments)] // the Python signature's keyword arguments
    fn session(
        &self,
        py: Python<'_>,
        journal: PathBuf,
        redirect_hook: Option<Py<PyAny>>,
        on_progress: Option<Py<PyAny>>,
        options: Option<&Bound<'_, PyAny>>,
        connection_string: Option<&str>,
        public_endpoint: bool,
        lock_dir: Option<PathBuf>,
        if_exists: &str,
        progress_detail: &str,
    ) -> PyResult<PyLinkSession> {
        let how = Open::from_if_exists(if_exists, &journal)?;
        let redirect = Redirect {
            hook: redirect_hook,
            connection_string,
            public_endpoint,
        };
        open(
            py,
            lab_pair(self),
            OpenArgs {
                journal,
                how,
                redirect,
                on_progress,
                progress_detail,
                options,
                lock_dir,
            },
        )
    }

    /// Serves this lab's world on loopback for the real connectors: SQL Server and the
    /// managed instance's T-SQL endpoint over TDS (TLS), the instance's ARM API over HTTPS,
    /// each with a certificate generated now and written into `directory` (default: a
    /// temporary directory removed by `stop()`). Returns a `ServedLab` with the connection
    /// strings, passwords, resource id, ARM endpoint, token and certificates; the servers run
    /// until its `stop()` (or the end of its `with` block).
    ///
    /// The servers answer from this very world: `run_for`, `start_workload` and `parity` see
    /// what the connectors do, and a session whose `SqlServer` and `ManagedInstance` are both
    /// served by this lab runs in its virtual time.
    #[pyo3(signature = (directory = None))]
    fn serve(
        &self,
        py: Python<'_>,
        directory: Option<PathBuf>,
    ) -> PyResult<crate::serve::PyServedLab> {
        crate::serve::serve(py, &self.lab, directory)
    }

    /// Starts the lab's application writing to `database` (the link's first by default) on
    /// `side`, at `transactions_per_second` (in virtual time, up to 4 rows each); replaces any
    /// workload running. It writes only while virtual time passes (`run_for`, or a session
    /// waiting).
    #[pyo3(signature = (transactions_per_second = 20.0, side = "SqlServer", database = None))]
    fn start_workload(
        &self,
        py: Python<'_>,
        transactions_per_second: f64,
        side: &str,
        database: Option<&str>,
    ) -> PyResult<()> {
        if !(transactions_per_second.is_finite()
            && transactions_per_second > 0.0
            && transactions_per_second <= 10_000.0)
        {
            return Err(crate::errors::argument_range(
                py,
                format!(
                    "transactions_per_second must be in (0, 10000], not {transactions_per_second}"
                ),
            ));
        }
        let side = match side {
            "SqlServer" => Side::SqlServer,
            "ManagedInstance" => Side::ManagedInstance,
            other => {
                return Err(crate::errors::invalid(format!(
                    "side must be \"SqlServer\" or \"ManagedInstance\", not {other:?}"
                )));
            }
        };
        let database = self.database_named(database)?;
        self.lab.sim.start_workload(milink_core::sim::WorkloadSpec {
            database,
            target: side,
            transactions_per_second,
            max_rows_per_transaction: 4,
        });
        Ok(())
    }

    /// Stops the application; returns its counters (`committed`, `rows`, `refused`, ...).
    fn stop_workload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.lab.sim.stop_workload())
    }

    /// The application's counters so far.
    fn workload_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.lab.sim.workload_stats())
    }

    /// Lets `seconds` of virtual time pass: seeding, replication and the workload move on.
    fn run_for(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = crate::args::seconds)] seconds: f64,
    ) -> PyResult<()> {
        if !(seconds.is_finite() && (0.0..=30.0 * 86_400.0).contains(&seconds)) {
            return Err(crate::errors::argument_range(
                py,
                format!("seconds must be between 0 and 30 days of virtual time, not {seconds}"),
            ));
        }
        let sim = self.lab.sim.clone();
        py.detach(move || {
            crate::errors::guarded(|| sim.advance(std::time::Duration::from_secs_f64(seconds)))
        })
        .map_err(|p| crate::errors::from_panic(p.as_ref()))
    }

    /// Row validation of `database` (the link's first by default): every table's row count and
    /// checksum on SQL Server against the managed instance: `{"database", "expected",
    /// "actual", "tables": [{"table", "expected_rows", "actual_rows", "matches"}, ...],
    /// "all_match"}`. None while a side has no copy of the database.
    #[pyo3(signature = (database = None))]
    fn parity<'py>(
        &self,
        py: Python<'py>,
        database: Option<&str>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let database = self.database_named(database)?;
        let Some(report) = self.lab.sim.parity(&database) else {
            return Ok(None);
        };
        let tables: Vec<serde_json::Value> = report
            .tables
            .iter()
            .map(|t| {
                serde_json::json!({
                    "table": t.table,
                    "expected_rows": t.expected_rows,
                    "actual_rows": t.actual_rows,
                    "matches": t.matches(),
                })
            })
            .collect();
        let value = serde_json::json!({
            "database": report.database,
            "expected": report.expected,
            "actual": report.actual,
            "tables": tables,
            "all_match": report.all_match(),
        });
        Ok(Some(to_py(py, &value)?))
    }

    fn __repr__(&self) -> String {
        format!(
            "<Lab {} → {} link={}>",
            self.lab.topology.source.server, self.lab.topology.instance.fqdn, self.lab.spec.link
        )
    }
}

/// The facts of `lab`'s world, as `Lab.facts()` and `tailspin_facts(seed)` give them:
/// `{"instance", "databases", "target", "options"}`, ready for `assess(**facts)`.
pub(crate) fn world_facts<'py>(py: Python<'py>, lab: &Lab) -> PyResult<Bound<'py, PyAny>> {
    let (instance, databases, target, now) = lab.sim.with_world(|w| {
        (
            w.instance_facts(),
            w.database_facts(),
            w.target_facts(),
            w.now,
        )
    });
    let facts = PyDict::new(py);
    facts.set_item("instance", to_py(py, &instance)?)?;
    facts.set_item("databases", to_py(py, &databases)?)?;
    facts.set_item("target", to_py(py, &target)?)?;
    // As the lab assesses its link: failback checked when the link is two-way.
    let failback = lab.spec.failover_mode == milink_core::lifecycle::FailoverMode::Manual;
    facts.set_item(
        "options",
        to_py(py, &serde_json::json!({ "now": now, "failback": failback }))?,
    )?;
    Ok(facts.into_any())
}
