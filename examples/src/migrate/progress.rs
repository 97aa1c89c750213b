//! The session's events while an operation runs: a progress bar on a terminal (indicatif:
//! the step under way, seeding as a bar with its ETA), plain lines otherwise (state changes,
//! steps, seeding percentages, lag, the catch-up gate's LSNs), each with the seconds since the
//! operation began.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use milink_core::lifecycle::ProgressEvent;
use milink_core::session::SessionEvent;
use tokio::sync::broadcast;

/// Shows `events` until the channel closes or `stop` fires; returns how many it showed.
pub async fn show(
    mut events: broadcast::Receiver<SessionEvent>,
    fancy: bool,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let start = Instant::now();
    let mut view = if fancy { View::Bar(bar()) } else { View::Lines };
    let mut last_percent = None;
    loop {
        let event = tokio::select! {
            biased;
            e = events.recv() => e,
            _ = &mut stop => break,
        };
        match event {
            Ok(e) => view.event(&e, start.elapsed(), &mut last_percent),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                view.line(start.elapsed(), &format!("({n} events not shown)"));
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    // What is still queued was sent before the operation returned.
    while let Ok(e) = events.try_recv() {
        view.event(&e, start.elapsed(), &mut last_percent);
    }
    if let View::Bar(b) = view {
        b.finish_and_clear();
    }
}

fn bar() -> ProgressBar {
    let b = ProgressBar::new_spinner();
    b.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    b.enable_steady_tick(Duration::from_millis(120));
    b
}

enum View {
    Bar(ProgressBar),
    Lines,
}

impl View {
    fn line(&self, elapsed: Duration, text: &str) {
        match self {
            View::Bar(b) => b.println(format!("[{:>7.1}s] {text}", elapsed.as_secs_f64())),
            View::Lines => println!("[{:>7.1}s] {text}", elapsed.as_secs_f64()),
        }
    }

    fn event(&mut self, e: &SessionEvent, elapsed: Duration, last_percent: &mut Option<u8>) {
        match e {
            SessionEvent::StateChanged { from, to } => {
                self.line(elapsed, &format!("state {from} -> {to}"));
                if let View::Bar(b) = self {
                    if b.length().is_some() && to != "Seeding" {
                        // Seeding is over: back to a spinner.
                        b.finish_and_clear();
                        *self = View::Bar(bar());
                    }
                    if let View::Bar(b) = self {
                        b.set_message(to.clone());
                    }
                }
            }
            SessionEvent::StepStarted { action, .. } => match self {
                View::Bar(b) => b.set_message(action.clone()),
                View::Lines => {
                    if !action.starts_with("probe:") && action != "arm:poll" {
                        self.line(elapsed, &format!("step {action}"));
                    }
                }
            },
            SessionEvent::StepRetrying {
                attempt,
                code,
                wait,
                ..
            } => self.line(
                elapsed,
                &format!("retrying after {code} (attempt {attempt}, waiting {wait:?})"),
            ),
            SessionEvent::StepFinished {
                action,
                error: Some(err),
                ..
            } => self.line(elapsed, &format!("step {action} failed: {}", err.message)),
            SessionEvent::StepFinished { .. } => {}
            SessionEvent::Progress(p) => self.progress(p, elapsed, last_percent),
            _ => {}
        }
    }

    fn progress(&mut self, p: &ProgressEvent, elapsed: Duration, last_percent: &mut Option<u8>) {
        match p {
            ProgressEvent::Seeding { database, percent } => {
                if *last_percent == Some(*percent) {
                    return;
                }
                *last_percent = Some(*percent);
                match self {
                    View::Bar(b) => {
                        if b.length().is_none() {
                            b.finish_and_clear();
                            let s = ProgressBar::new(100);
                            s.set_style(
                                ProgressStyle::with_template(
                                    "seeding {msg} [{bar:30}] {pos}% (ETA {eta})",
                                )
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                            );
                            *b = s;
                        }
                        b.set_message(database.to_string());
                        b.set_position(u64::from(*percent));
                    }
                    View::Lines => {
                        self.line(elapsed, &format!("seeding {database}: {percent}%"));
                    }
                }
            }
            ProgressEvent::Lag {
                database,
                seconds,
                lsn_gap,
            } => {
                if let View::Lines = self {
                    self.line(
                        elapsed,
                        &format!(
                            "lag {database}: {} s, {} LSNs behind",
                            seconds.map_or("?".to_owned(), |s| s.to_string()),
                            lsn_gap.map_or("?".to_owned(), |g| g.to_string())
                        ),
                    );
                }
            }
            ProgressEvent::CatchUp {
                database,
                sql_server,
                managed_instance,
                equal_for,
            } => {
                let text = format!(
                    "catch-up {database}: SQL Server {} / managed instance {}{}",
                    lsn(*sql_server),
                    lsn(*managed_instance),
                    equal_for.map_or(String::new(), |d| format!(", equal for {d:?}"))
                );
                match self {
                    View::Bar(b) => b.set_message(text),
                    View::Lines => self.line(elapsed, &text),
                }
            }
            ProgressEvent::DataLoss { report } => {
                self.line(elapsed, &format!("!!! data loss: {report:?}"));
            }
            ProgressEvent::SplitBrain { .. } => {
                self.line(elapsed, "!!! split brain: both sides report PRIMARY");
            }
            ProgressEvent::Phase { .. } => {}
        }
    }
}

fn lsn(l: Option<milink_core::names::Lsn>) -> String {
    l.map_or("?".to_owned(), |l| l.to_string())
}
