//! Runnable examples for milink; `tailspin` is the main job.
//!
//! - [`arc_assessment`]: the lab's readiness through Azure Arc (Arc's assessments beside
//!   milink's), over loopback HTTPS with the real Arc client;
//! - [`arc_read`]: a read-only look at an Arc-enabled SQL Server (the opt-in live test's);
//! - [`tailspin`]: the Tailspin lab end to end on the simulator (the `tailspin` example is a thin
//!   command line over [`tailspin::run`]);
//! - [`app`]: the lab's application, which follows the session's redirect hook;
//! - [`config`]: the configuration file of a link (what `tailspin --serve` prints);
//! - [`narrate`]: port decorators that print what the session does, in virtual time;
//! - [`plan`]: prints the library's plan of a link ([`milink_core::plan`]; the `plan` example and
//!   the lab's `--plan` mode), and renders single effects for the lab's narration.

pub mod app;
pub mod arc_assessment;
pub mod arc_read;
pub mod config;
pub mod migrate;
pub mod narrate;
pub mod plan;
pub mod tailspin;
