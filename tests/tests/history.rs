//! A session's history of readings: every link reading it took, in order, with the LSNs of both
//! sides, seeding and lag, bounded.

use std::time::Duration;

use milink_core::LinkSession;
use milink_core::journal::MemoryJournal;
use milink_core::lifecycle::Side;
use milink_tests::{create, lab, options, pass, ready, workload};

#[tokio::test]
async fn the_history_follows_seeding_then_replication_under_load() {
    let lab = lab(11);
    let session = create(&lab, MemoryJournal::new(), options(11)).unwrap();
    assert!(session.history().is_empty());
    session.record_assessment(ready()).await.unwrap();
    session.start().await.unwrap();
    workload(&lab, Side::SqlServer, 40.0);
    for _ in 0..5 {
        pass(&lab, Duration::from_secs(30));
        session.health().await.unwrap();
    }
    let history = session.history();
    // Readings in time order, seeding first, then replicating.
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    let seeding: Vec<_> = history.iter().filter(|r| r.state == "Seeding").collect();
    assert!(!seeding.is_empty(), "{history:?}");
    let percents: Vec<u8> = seeding
        .iter()
        .filter_map(|r| r.databases.first().and_then(|d| d.seeding_percent))
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    let last = history.last().unwrap();
    assert_eq!(last.state, "Replicating");
    let db = &last.databases[0];
    assert_eq!(db.database, lab.database);
    // Under load both LSNs are read and both move on between readings (the instance's is read
    // live, over T-SQL, a moment after SQL Server's, so it may already hold a later commit).
    assert!(db.source_lsn.is_some() && db.instance_lsn.is_some());
    // The five health readings are the last five, 30 virtual seconds apart.
    let tail: Vec<_> = history.iter().rev().take(5).collect();
    let lsns =
        |pick: fn(&milink_core::session::DatabaseReading) -> Option<milink_core::names::Lsn>| {
            tail.iter()
                .map(|r| pick(&r.databases[0]).unwrap())
                .collect::<Vec<_>>()
        };
    for side in [lsns(|d| d.source_lsn), lsns(|d| d.instance_lsn)] {
        assert!(side.windows(2).all(|w| w[0] > w[1]), "{side:?}");
    }
    assert!(
        tail.windows(2)
            .all(|w| w[0].at.since(w[1].at) >= Duration::from_secs(30))
    );
}
