//! `--serve`: the simulated TailspinSql and its managed instance on loopback, for a tool that
//! drives a real pair. SQL Server and the instance's T-SQL endpoint answer over TDS (TLS), the
//! instance's ARM half over HTTPS, all from one simulated world whose time follows the wall
//! clock (times `speed`) and whose application keeps writing to ToyStore.
//!
//! What a client needs is written into a directory: the servers' certificates (DER, to trust
//! explicitly), `secrets.env` (mode 0600: the SQL password and the ARM token, never printed),
//! and `milink.toml`, the link's configuration ([`LinkConfig`]), also printed. The file
//! `workload` starts and stops the application: write `stopped` into it before a planned
//! failover, as the procedure says, and `running` to resume the writes on SQL Server.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use milink_core::lifecycle::Side;
use milink_core::secret::Secret;
use milink_core::sim::arm_https::{ArmHttpsServer, ArmServerConfig};
use milink_core::sim::tds::TdsServer;
use milink_core::sim::{EventKind, Lab, Sim, SimConfig, WorkloadSpec};
use milink_core::time::{Clock, SystemClock};

use super::wire::{USER, serve as serve_tds};
use crate::config::{CredentialKind, InstanceConfig, LinkConfig, LinkSection, SqlEndpoint, Timing};
use milink_core::lifecycle::MachineOptions;

/// The environment variable of the SQL Server login's password in `secrets.env`.
pub const SQL_PASSWORD_ENV: &str = "MILINK_SQL_PASSWORD";
/// The environment variable of the instance's T-SQL login's password in `secrets.env`.
pub const MI_PASSWORD_ENV: &str = "MILINK_MI_SQL_PASSWORD";
/// The environment variable of the ARM bearer token in `secrets.env`.
pub const ARM_TOKEN_ENV: &str = "MILINK_ARM_TOKEN";

/// The application's write rate while served (transactions per second of virtual time).
const SERVED_TPS: f64 = 20.0;
/// How often the world's clock is brought up to the wall clock.
const TICK: Duration = Duration::from_millis(50);

/// What `--serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The world's seed.
    pub seed: u64,
    /// Where the certificates, `secrets.env` and `milink.toml` are written.
    pub dir: PathBuf,
    /// Virtual seconds per wall-clock second (1 = real time).
    pub speed: f64,
}

/// The served world; it runs until dropped (or [`Served::stop`]).
pub struct Served {
    sim: Sim,
    config: LinkConfig,
    config_file: PathBuf,
    secrets_file: PathBuf,
    _sql: TdsServer,
    _mi_tsql: TdsServer,
    arm: ArmHttpsServer,
    clock: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Starts the servers, the application's workload and the clock; writes the files.
    pub async fn start(options: &ServeOptions) -> Result<Served, Box<dyn Error>> {
        if !(options.speed.is_finite() && options.speed > 0.0 && options.speed <= 10_000.0) {
            return Err(format!(
                "--speed must be a number of virtual seconds per second in (0, 10000], not {}",
                options.speed
            )
            .into());
        }
        std::fs::create_dir_all(&options.dir).map_err(|e| {
            format!(
                "--dir {}: cannot create the directory: {e}",
                options.dir.display()
            )
        })?;
        // The world starts at the wall clock's time, so the times its servers report (backups,
        // for one) are not in a client's past; from there it runs `speed` times faster.
        let lab = Lab::tailspin_with(SimConfig {
            start: SystemClock.now(),
            ..SimConfig::with_seed(options.seed)
        })?;
        let sim = lab.sim.clone();
        let sql_password = milink_core::sqlserver::password::generate()?;
        let mi_password = milink_core::sqlserver::password::generate()?;
        let token = milink_core::sqlserver::password::generate()?;
        let (sql, _) = serve_tds(
            &sim,
            Side::SqlServer,
            &sql_password,
            &options.dir,
            "sql-server",
        )
        .await?;
        let (mi_tsql, _) = serve_tds(
            &sim,
            Side::ManagedInstance,
            &mi_password,
            &options.dir,
            "managed-instance",
        )
        .await?;
        let arm =
            ArmHttpsServer::start(ArmServerConfig::with_token(token.clone()), sim.clone()).await?;
        let arm_ca = options.dir.join(format!("arm-{}.der", arm.addr().port()));
        std::fs::write(&arm_ca, arm.certificate_der())
            .map_err(|e| format!("--dir: cannot write {}: {e}", arm_ca.display()))?;
        let ca = |server: &TdsServer, name: &str| {
            options
                .dir
                .join(format!("{name}-{}.der", server.addr().port()))
        };
        let endpoint = |server: &TdsServer, env: &str, name: &str| SqlEndpoint {
            host: "127.0.0.1".to_owned(),
            port: server.addr().port(),
            user: USER.to_owned(),
            password_env: env.to_owned(),
            trusted_ca_file: Some(ca(server, name)),
        };
        let config = LinkConfig {
            sql_server: endpoint(&sql, SQL_PASSWORD_ENV, "sql-server"),
            managed_instance: InstanceConfig {
                resource_id: lab.spec.target.instance.to_string(),
                arm_endpoint: arm.base_url().to_owned(),
                arm_trusted_ca_file: Some(arm_ca),
                credential: CredentialKind::TokenEnv,
                token_env: Some(ARM_TOKEN_ENV.to_owned()),
                tsql: Some(endpoint(&mi_tsql, MI_PASSWORD_ENV, "managed-instance")),
            },
            link: LinkSection {
                name: lab.spec.link.to_string(),
                databases: lab.spec.databases.iter().map(ToString::to_string).collect(),
                endpoint_host: Some(lab.spec.source.endpoint_host.to_string()),
                endpoint_port: None,
                journal: None,
            },
            timing: Some(scaled_timing(options.speed)),
        };
        let config_file = options.dir.join("milink.toml");
        std::fs::write(&config_file, config.to_toml()?)
            .map_err(|e| format!("--dir: cannot write {}: {e}", config_file.display()))?;
        let secrets_file = options.dir.join("secrets.env");
        write_secrets(
            &secrets_file,
            &[
                (SQL_PASSWORD_ENV, &sql_password),
                (MI_PASSWORD_ENV, &mi_password),
                (ARM_TOKEN_ENV, &token),
            ],
        )?;
        let workload = WorkloadSpec {
            database: lab.database.clone(),
            target: Side::SqlServer,
            transactions_per_second: SERVED_TPS,
            max_rows_per_transaction: 4,
        };
        sim.start_workload(workload.clone());
        let control = options.dir.join(WORKLOAD_FILE);
        std::fs::write(&control, "running\n")?;
        let clock = tokio::spawn(follow_the_wall_clock(
            sim.clone(),
            options.speed,
            Application {
                control,
                spec: workload,
                running: true,
            },
        ));
        Ok(Served {
            sim,
            config,
            config_file,
            secrets_file,
            _sql: sql,
            _mi_tsql: mi_tsql,
            arm,
            clock,
        })
    }

    /// The link's configuration for this pair.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// `milink.toml`.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// `secrets.env` (`NAME='value'` lines a POSIX shell can source, mode 0600 on Unix).
    pub fn secrets_file(&self) -> &Path {
        &self.secrets_file
    }

    /// The file that starts and stops the application ([`WORKLOAD_FILE`]).
    pub fn workload_file(&self) -> PathBuf {
        self.config_file.with_file_name(WORKLOAD_FILE)
    }

    /// The world served.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// Stops the clock and the servers.
    pub async fn stop(self) {
        self.clock.abort();
        self.arm.shutdown().await;
    }
}

/// Prints each role change in the world since event `seen` (`# role: LINK SIDE ROLE`), what
/// an operator would see in the servers' error logs; returns the new count of events.
fn print_role_changes(sim: &Sim, seen: usize) -> usize {
    sim.with_world(|w| {
        let events = w.events_since(seen);
        for e in events {
            if let EventKind::RoleChanged { link, side, role } = &e.kind {
                println!("# role: {link} {side:?} {role:?}");
            }
        }
        seen + events.len()
    })
}

/// The machine's waits for a world whose clock runs `speed` times faster than the wall clock:
/// the library's defaults divided by `speed` (at least 20 ms), so a tool reading the link sees
/// what it would see at real time, sooner.
fn scaled_timing(speed: f64) -> Timing {
    let defaults = MachineOptions::default();
    let scale = |d: Duration| {
        let ms = (d.as_secs_f64() * 1000.0 / speed).round();
        Some((ms as u64).max(20))
    };
    Timing {
        probe_interval_ms: scale(defaults.probe_interval),
        first_poll_ms: scale(defaults.first_poll),
        stability_window_ms: scale(defaults.stability_window),
    }
}

/// The file in the served directory that starts and stops the application: `stopped` (as
/// before a planned failover, whose procedure starts with stopping the workload) or `running`.
pub const WORKLOAD_FILE: &str = "workload";

/// The served application and the file that controls it.
struct Application {
    control: PathBuf,
    spec: WorkloadSpec,
    running: bool,
}

impl Application {
    /// Starts or stops the writes as the control file says.
    fn follow(&mut self, sim: &Sim) {
        let Ok(text) = std::fs::read_to_string(&self.control) else {
            return;
        };
        match text.trim() {
            "stopped" if self.running => {
                sim.stop_workload();
                self.running = false;
            }
            "running" if !self.running => {
                sim.start_workload(self.spec.clone());
                self.running = true;
            }
            _ => {}
        }
    }
}

/// Brings the world's clock up to the wall clock (times `speed`) every [`TICK`], follows the
/// application's control file and prints the world's role changes.
async fn follow_the_wall_clock(sim: Sim, speed: f64, mut app: Application) {
    let start = Instant::now();
    let origin = sim.now();
    let mut seen = sim.with_world(|w| w.events_since(0).len());
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let due = Duration::from_secs_f64(start.elapsed().as_secs_f64() * speed);
        let target = origin.plus(due);
        // A call on the wire may have moved the world past the wall clock already.
        if target > sim.now() {
            sim.advance_to(target);
        }
        app.follow(&sim);
        seen = print_role_changes(&sim, seen);
    }
}

/// Writes `NAME='value'` lines (quoted for a POSIX shell) readable by their owner only.
fn write_secrets(path: &Path, secrets: &[(&str, &Secret)]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    for (name, value) in secrets {
        // Single-quoted, so `set -a; . secrets.env` reads the value as it is.
        let quoted = value.expose().replace('\'', "'\\''");
        writeln!(file, "{name}='{quoted}'")?;
    }
    Ok(())
}

/// Reads a `secrets.env` written by `--serve`: `NAME='value'` lines (shell-quoted).
pub fn read_secrets(path: &Path) -> std::io::Result<Vec<(String, Secret)>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), Secret::new(unquote(v.trim()))))
        .collect())
}

/// A value as [`write_secrets`] quotes it (`'…'`, a quote inside as `'\''`), or as it is.
fn unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("'\\''", "'"),
        None => v.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_read_back_as_written_whatever_their_characters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.env");
        let odd = Secret::new("a'b$c=d\"e;f g");
        let plain = Secret::new("Plain123");
        write_secrets(&path, &[("ODD", &odd), ("PLAIN", &plain)]).unwrap();
        let read = read_secrets(&path).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].0, "ODD");
        assert_eq!(read[0].1.expose(), odd.expose());
        assert_eq!(read[1].1.expose(), plain.expose());
        // What a POSIX shell reads from it.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("ODD='a'\\''b$c=d\"e;f g'\n"), "{text}");
    }

    #[test]
    fn the_served_timing_is_the_defaults_divided_by_the_speed() {
        let t = scaled_timing(100.0);
        assert_eq!(t.probe_interval_ms, Some(50));
        assert_eq!(t.stability_window_ms, Some(300));
        assert_eq!(t.first_poll_ms, Some(20));
        let real = scaled_timing(1.0);
        assert_eq!(
            real.apply(MachineOptions::default()),
            MachineOptions::default()
        );
    }
}
