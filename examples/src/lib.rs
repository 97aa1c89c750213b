//! Runnable examples for milink; `tailspin` is the main job.
