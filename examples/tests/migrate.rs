//! `migrate` against `tailspin --serve`, each in its own process, as a user runs them: the
//! served pair is reached only through the files `--serve` writes (milink.toml, secrets.env,
//! the certificates), and every assertion is on what the user sees: exit codes, output, the
//! servers' own state read through the configuration's connection, and the role changes the
//! served world prints.
//!
//! The story: assess (and the not-ready and dry-run refusals), start (the link seeds and
//! replicates), status, the guards of failover, a planned failover whose `migrate` is killed
//! with SIGKILL as the role change starts and which `resume` finishes without a second role
//! change, failback, cutover.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use milink_core::lifecycle::ReplicaRole;
use milink_core::names::{DatabaseName, LinkName};
use milink_core::ports::SourceServer;
use milink_core::sqlserver::SqlServerAdapter;
use milink_core::sqlserver::connection::Connection;
use milink_core::sqlserver::render::RenderContext;
use milink_core::time::SystemTimer;
use milink_examples::config::LinkConfig;
use milink_examples::tailspin::serve::read_secrets;

/// The example binaries next to this test's (cargo builds the examples with the tests).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap();
    let path = profile.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p milink-examples --examples` (cargo test builds it)",
        path.display()
    );
    path
}

/// `tailspin --serve` in its own process, its stdout lines collected as they come.
struct Served {
    child: Child,
    dir: tempfile::TempDir,
    lines: Arc<Mutex<Vec<String>>>,
    secrets: Vec<(String, String)>,
    config: LinkConfig,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(example("tailspin"))
            .args(["--serve", "--seed", "4", "--speed", "100", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let collected = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line == "# ready" {
                    let _ = ready_tx.send(());
                }
                collected.lock().unwrap().push(line);
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("tailspin --serve did not get ready");
        let secrets = read_secrets(&dir.path().join("secrets.env"))
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_owned()))
            .collect();
        let config = LinkConfig::from_toml(
            &std::fs::read_to_string(dir.path().join("milink.toml")).unwrap(),
        )
        .unwrap();
        Served {
            child,
            dir,
            lines,
            secrets,
            config,
        }
    }

    fn config_file(&self) -> PathBuf {
        self.dir.path().join("milink.toml")
    }

    /// `migrate -c milink.toml --plain ARGS`, with the secrets in its environment only.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(example("migrate"));
        c.arg("-c")
            .arg(self.config_file())
            .arg("--plain")
            .args(args)
            .envs(self.secrets.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("MILINK_JOURNAL")
            .stdin(Stdio::null());
        c
    }

    fn migrate(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().unwrap();
        Run::of(args, out)
    }

    /// The role changes the served world printed so far: `(side, role)`.
    fn role_changes(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix("# role: DAG_ToyStore "))
            .map(str::to_owned)
            .collect()
    }

    /// SQL Server's role in the link, read through the configuration's own connection.
    fn sql_server_role(&self) -> Option<ReplicaRole> {
        let secrets = self.secrets.clone();
        let lookup = move |name: &str| {
            secrets
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let options = self
            .config
            .sql_server
            .connect_options(&lookup, "migrate test")
            .unwrap();
        let adapter = SqlServerAdapter::new(
            Connection::new(options, Arc::new(SystemTimer)),
            RenderContext::with_password(None).unwrap(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let view = runtime
            .block_on(adapter.link_state(
                &LinkName::new("DAG_ToyStore").unwrap(),
                &[DatabaseName::new("ToyStore").unwrap()],
            ))
            .unwrap();
        view.role
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("DAG_ToyStore.journal")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a user saw of one run.
struct Run {
    code: i32,
    out: String,
}

impl Run {
    fn of(args: &[&str], out: Output) -> Run {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let code = out.status.code().unwrap_or(-1);
        eprintln!("$ migrate {}  -> exit {code}", args.join(" "));
        Run { code, out: text }
    }

    fn expect(self, code: i32, texts: &[&str]) -> Run {
        assert_eq!(self.code, code, "exit code; output:\n{}", self.out);
        for t in texts {
            assert!(self.out.contains(t), "{t:?} not in:\n{}", self.out);
        }
        self
    }
}

#[test]
fn migrate_drives_the_served_pair_through_the_whole_story() {
    let started = Instant::now();
    let served = Served::start();

    // Read-only: the lab's verdicts, read over TDS and HTTPS.
    served.migrate(&["assess"]).expect(
        0,
        &[
            "SQL Server TailspinSql 16.0.4125.3",
            "ToyStore        READY (linked)",
            "Customer360     NOT READY",
            "x Link.RecoveryModel",
            "x FileStream",
        ],
    );
    // No command: the assessment and the plan, nothing changed.
    served.migrate(&[]).expect(
        0,
        &[
            "Plan of link DAG_ToyStore",
            "JoiningInstance",
            "Nothing was changed",
        ],
    );
    // A link of a database with blockers is not ready, and nothing is created.
    let c360 = served.dir.path().join("c360.toml");
    std::fs::write(
        &c360,
        std::fs::read_to_string(served.config_file())
            .unwrap()
            .replace(
                "databases = [\"ToyStore\"]",
                "databases = [\"Customer360\"]",
            ),
    )
    .unwrap();
    let c360_journal = served.dir.path().join("c360.journal");
    let mut c = Command::new(example("migrate"));
    c.arg("-c")
        .arg(&c360)
        .arg("--journal")
        .arg(&c360_journal)
        .args(["--plain", "--execute", "start"])
        .envs(served.secrets.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Run::of(&["--execute", "start (Customer360)"], c.output().unwrap())
        .expect(3, &["NOT READY", "nothing was changed"]);
    assert!(!c360_journal.exists());

    // Without --execute, start only says what it would do.
    served.migrate(&["start"]).expect(
        0,
        &[
            "Dry run: would create link DAG_ToyStore",
            "Nothing was changed",
        ],
    );
    assert!(!served.journal().exists(), "a dry run wrote a journal");
    // Nothing to fail over yet.
    served
        .migrate(&["--execute", "failover"])
        .expect(4, &["no journal"]);

    // Start: the link is created, seeds and replicates.
    served.migrate(&["--execute", "start"]).expect(
        0,
        &[
            "state JoiningInstance -> Seeding",
            "seeding ToyStore:",
            "state Seeding -> Replicating",
            "link DAG_ToyStore: Replicating (primary: SQL Server)",
            "start: done",
        ],
    );
    assert!(served.journal().exists());
    // Starting again is refused: the journal says the link exists.
    served
        .migrate(&["--execute", "start"])
        .expect(4, &["was started before"]);

    // Status, once and watched (plain lines: not a terminal).
    served.migrate(&["status"]).expect(
        0,
        &[
            "link DAG_ToyStore: Replicating (primary: SQL Server)",
            "ToyStore: SQL Server LSN",
            "certificate Cert_TailspinSql_endpoint expires",
        ],
    );
    let watched = served.migrate(&["status", "--watch", "--interval", "0.1", "--count", "3"]);
    assert_eq!(watched.code, 0, "{}", watched.out);
    assert_eq!(
        watched
            .out
            .matches("link DAG_ToyStore: Replicating")
            .count(),
        3,
        "{}",
        watched.out
    );

    // The failover's guards refuse, and change nothing.
    served
        .migrate(&["--execute", "failover", "--force"])
        .expect(4, &["--accept-data-loss DAG_ToyStore"]);
    served
        .migrate(&[
            "--execute",
            "failover",
            "--force",
            "--accept-data-loss",
            "DAG_Other",
        ])
        .expect(4, &["not the link DAG_ToyStore"]);
    served.migrate(&["--execute", "failover"]).expect(
        4,
        &["client session(s) still use", "stop the application first"],
    );
    assert_eq!(served.sql_server_role(), Some(ReplicaRole::Primary));
    assert!(
        served
            .role_changes()
            .iter()
            .all(|r| !r.contains("ManagedInstance Primary"))
    );

    // The application stops, as the procedure says; the failover's migrate is killed as the
    // role change starts.
    std::fs::write(served.dir.path().join("workload"), "stopped\n").unwrap();
    std::thread::sleep(Duration::from_millis(200)); // the served world polls the file
    let mut child = served
        .command(&["--execute", "failover"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let at_role_change = line.contains("state CatchingUp -> FailingOver");
        seen.push(line);
        if at_role_change {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "migrate was not killed: {seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("CatchingUp -> FailingOver")),
        "{seen:?}"
    );
    // Resume finishes the failover from the journal.
    served.migrate(&["--execute", "resume"]).expect(
        0,
        &[
            "link DAG_ToyStore: FailedOver (primary: managed instance)",
            "resume: done",
        ],
    );
    assert_eq!(served.sql_server_role(), Some(ReplicaRole::Secondary));
    // One role change, not two: the instance became primary once and SQL Server did not
    // take the role back.
    let changes = served.role_changes();
    assert_eq!(
        changes
            .iter()
            .filter(|r| r.as_str() == "ManagedInstance Primary")
            .count(),
        1,
        "{changes:?}"
    );
    assert_eq!(
        changes.last().map(String::as_str),
        Some("ManagedInstance Primary"),
        "{changes:?}"
    );
    served.migrate(&["status"]).expect(
        0,
        &[
            "FailedOver (primary: managed instance)",
            "operation: failover (reached)",
        ],
    );

    // Failback, then cutover.
    served.migrate(&["--execute", "failback"]).expect(
        0,
        &[
            "link DAG_ToyStore: Replicating (primary: SQL Server)",
            "failback: done",
        ],
    );
    assert_eq!(served.sql_server_role(), Some(ReplicaRole::Primary));
    served.migrate(&["--execute", "cutover"]).expect(
        0,
        &[
            "AwaitingFirstFullBackup",
            "link DAG_ToyStore: Completed (primary: managed instance)",
            "cutover: done",
        ],
    );
    // The link is gone: SQL Server no longer has it, and a failover is refused.
    assert_eq!(served.sql_server_role(), None);
    served
        .migrate(&["--execute", "failover"])
        .expect(4, &["refused"]);
    eprintln!("the story took {:.1} s", started.elapsed().as_secs_f64());
}
