//! The lab's command line: its options, how they are parsed, and the usage text.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The command line.
pub const USAGE: &str = "\
usage: tailspin [--seed N] [--plan] [--failback | --cutover] [--crash-after RECORD]
                [--resume JOURNAL] [--json] [--journal-dir DIR] [--wire] [--route arc]
       tailspin --serve [--seed N] [--dir DIR] [--speed X]

  --seed N              seed of the simulated world (default 1); the same seed gives the same run
  --plan                print the plan: every T-SQL batch and ARM request, by state; nothing runs
  --failback            after the failover, fail back to SQL Server
  --cutover             one-way migration: the link ends removed and the DAG dropped
  --crash-after RECORD  stop the orchestrator right after journal record RECORD (>= 1)
  --resume JOURNAL      continue an interrupted run from its journal
  --json                print only one JSON document (verdicts, phases, failover, parity, journal)
  --journal-dir DIR     where journals are written (default: the system temp dir)
  --wire                drive SQL Server through the real adapter over TDS and the managed
                        instance through the real ARM adapter over HTTPS (loopback, TLS) to the
                        simulator, instead of calling it in process
  --route arc           reach SQL Server through Azure Arc (Microsoft.AzureArcData) with the real
                        Arc client over HTTPS to the simulator: the assessment through Arc too, the
                        link created, failed over and removed by Arc's operations; the story is
                        the link, a planned failover validated, then the cutover (--route direct,
                        T-SQL, is the default)
  --serve               run nothing: serve the simulated TailspinSql (TDS) and its managed
                        instance (TDS and ARM over HTTPS) on loopback, with its application
                        writing, until stopped; print the link's configuration (milink.toml)
  --dir DIR             with --serve: where milink.toml, secrets.env (mode 0600) and the
                        servers' certificates are written (default: a new temp dir)
  --speed X             with --serve: virtual seconds per wall-clock second (default 1)";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// World seed.
    pub seed: u64,
    /// Plan mode.
    pub plan: bool,
    /// Fail back after the failover.
    pub failback: bool,
    /// One-way cutover instead of a failover.
    pub cutover: bool,
    /// Crash after this journal record.
    pub crash_after: Option<u64>,
    /// Resume from this journal.
    pub resume: Option<PathBuf>,
    /// JSON output only.
    pub json: bool,
    /// Where journals go.
    pub journal_dir: PathBuf,
    /// SQL Server over TDS instead of in process.
    #[serde(default)]
    pub wire: bool,
    /// Serve the simulated pair on loopback instead of running the lab.
    #[serde(default)]
    pub serve: bool,
    /// With `serve`: where its files go.
    #[serde(default)]
    pub serve_dir: Option<PathBuf>,
    /// With `serve`: virtual seconds per wall-clock second.
    #[serde(default = "one")]
    pub speed: f64,
    /// `--route arc`: SQL Server through Azure Arc instead of T-SQL.
    #[serde(default)]
    pub route_arc: bool,
}

fn one() -> f64 {
    1.0
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            plan: false,
            failback: false,
            cutover: false,
            crash_after: None,
            resume: None,
            json: false,
            journal_dir: std::env::temp_dir().join("milink-tailspin"),
            wire: false,
            serve: false,
            serve_dir: None,
            speed: 1.0,
            route_arc: false,
        }
    }
}

/// A path option's value: an empty one would silently mean the current directory.
fn path_value(flag: &str, value: String) -> Result<PathBuf, String> {
    if value.trim().is_empty() {
        return Err(format!(
            "{flag} needs a path; an empty one would write into the current directory (use {flag} . \
             to mean it)"
        ));
    }
    Ok(PathBuf::from(value))
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match a.as_str() {
                "--seed" => {
                    o.seed = value("--seed")?
                        .parse()
                        .map_err(|_| "--seed takes a number".to_string())?;
                }
                "--plan" => o.plan = true,
                "--failback" => o.failback = true,
                "--cutover" => o.cutover = true,
                "--json" => o.json = true,
                "--wire" => o.wire = true,
                "--route" => {
                    o.route_arc = match value("--route")?.as_str() {
                        "arc" => true,
                        "direct" => false,
                        other => {
                            return Err(format!("--route takes arc or direct, not {other:?}"));
                        }
                    }
                }
                "--serve" => o.serve = true,
                "--dir" => o.serve_dir = Some(path_value("--dir", value("--dir")?)?),
                "--speed" => {
                    o.speed = value("--speed")?
                        .parse()
                        .map_err(|_| "--speed takes a number".to_string())?;
                    if !(o.speed.is_finite() && o.speed > 0.0 && o.speed <= 10_000.0) {
                        return Err("--speed must be in (0, 10000]".into());
                    }
                }
                "--crash-after" => {
                    let n: u64 = value("--crash-after")?
                        .parse()
                        .map_err(|_| "--crash-after takes a journal record number".to_string())?;
                    if n == 0 {
                        return Err(
                            "--crash-after counts from 1 (record 1 creates the link's journal)"
                                .into(),
                        );
                    }
                    o.crash_after = Some(n);
                }
                "--resume" => o.resume = Some(path_value("--resume", value("--resume")?)?),
                "--journal-dir" => {
                    o.journal_dir = path_value("--journal-dir", value("--journal-dir")?)?
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
            }
        }
        if o.failback && o.cutover {
            return Err(
                "--failback and --cutover exclude each other: a cutover removes the link".into(),
            );
        }
        let lab_only = o.plan
            || o.failback
            || o.cutover
            || o.crash_after.is_some()
            || o.resume.is_some()
            || o.json
            || o.wire;
        if o.serve && lab_only {
            return Err("--serve runs no lab: it takes only --seed, --dir and --speed".into());
        }
        if !o.serve && (o.serve_dir.is_some() || args.iter().any(|a| a == "--speed")) {
            return Err("--dir and --speed go with --serve".into());
        }
        if o.route_arc && (o.wire || o.failback || o.cutover || o.serve) {
            return Err(
                "--route arc runs its own story (link, planned failover, cutover) with Arc over \
                 HTTPS: it takes no --wire, --failback, --cutover or --serve (Arc offers no \
                 failback)"
                    .into(),
            );
        }
        if o.plan && (o.crash_after.is_some() || o.resume.is_some()) {
            return Err("--plan runs nothing, so it cannot crash or resume".into());
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn route_arc_is_refused_with_what_arc_cannot_run() {
        assert!(parse(&["--route", "arc"]).unwrap().route_arc);
        assert!(!parse(&["--route", "direct"]).unwrap().route_arc);
        assert!(
            parse(&["--route", "tds"])
                .unwrap_err()
                .contains("arc or direct")
        );
        for other in ["--wire", "--failback", "--cutover"] {
            let e = parse(&["--route", "arc", other]).unwrap_err();
            assert!(e.contains("--route arc"), "{other}: {e}");
        }
    }

    #[test]
    fn serve_takes_its_own_options_only() {
        let o = parse(&["--serve", "--seed", "3", "--speed", "60", "--dir", "/tmp/x"]).unwrap();
        assert!(o.serve);
        assert_eq!((o.seed, o.speed), (3, 60.0));
        assert_eq!(o.serve_dir, Some(PathBuf::from("/tmp/x")));
        for lab_flag in ["--cutover", "--wire", "--json", "--plan"] {
            let e = parse(&["--serve", lab_flag]).unwrap_err();
            assert!(e.contains("--serve runs no lab"), "{lab_flag}: {e}");
        }
        assert!(
            parse(&["--speed", "2"])
                .unwrap_err()
                .contains("go with --serve")
        );
        assert!(
            parse(&["--dir", "/tmp"])
                .unwrap_err()
                .contains("go with --serve")
        );
        for bad in ["0", "-1", "NaN", "inf", "1e9", "fast"] {
            assert!(parse(&["--serve", "--speed", bad]).is_err(), "{bad}");
        }
    }
}
