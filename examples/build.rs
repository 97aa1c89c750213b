//! `cfg(milink_live_arc)` when `MILINK_LIVE_ARC_SQL` is set, so the live Arc test runs then and
//! is reported as ignored (not passed) otherwise.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(milink_live_arc)");
    println!("cargo::rerun-if-env-changed=MILINK_LIVE_ARC_SQL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("MILINK_LIVE_ARC_SQL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=milink_live_arc");
    }
}
