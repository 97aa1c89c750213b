//! Runnable examples for milink; `tailspin` is the main job.
//!
//! - [`plan`]: renders effects as the T-SQL batches and ARM requests they would send.

pub mod plan;
