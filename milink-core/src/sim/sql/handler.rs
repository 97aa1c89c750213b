//! The simulated servers' [`TdsHandler`](super::super::tds::TdsHandler).
