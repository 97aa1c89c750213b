//! Journal files: arbitrary bytes either open to records that re-validate and replay, or give a
//! typed error; a failed open or repair leaves the file as it was, a repair removes only a torn
//! last line, and a file that never was a journal is never cut.
//!
//! The first byte's low bit chooses whether every JSON-object line gets a valid checksum first,
//! so mutations of a record reach the record parser instead of stopping at the checksum.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use milink_fuzz::properties;

/// One directory for the whole run, in memory when `/dev/shm` exists.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        dir.expect("a temp dir")
    });
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| DIR.get().expect("created above").path().to_path_buf())
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, bytes)) = data.split_first() else {
        return;
    };
    let bytes = if mode & 1 == 1 {
        properties::with_checksums(bytes)
    } else {
        bytes.to_vec()
    };
    properties::journal(&bytes, dir());
});
