//! ARM's view of a link resource lags the servers.
//!
//! `GET …/distributedAvailabilityGroups/{name}` reports the instance's role, `replicationMode`
//! and `databases[]` (LSNs, `replicaState`, health) as the service last refreshed them, not as
//! they are this instant. The world keeps a short history of that view per link, taken as it
//! steps, and [`SimManagedInstance::link_state`](super::SimManagedInstance) answers with the
//! reading [`SimConfig::arm_reading_lag`](super::SimConfig::arm_reading_lag) old. Whether the
//! resource exists is answered live (a `DELETE` that completed is not undone by a stale read).
//! T-SQL reads on SQL Server stay live.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::lifecycle::{Side, SideView};
use crate::names::LinkName;
use crate::time::Timestamp;

use super::world::World;

/// The instance's view of one link at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ArmReading {
    /// When the world looked like this.
    pub(crate) at: Timestamp,
    /// What ARM would have reported then.
    pub(crate) view: SideView,
}

impl World {
    /// Records the instance's view of every link it has, now. Keeps only what a lagging read can
    /// still return: the newest reading at least the lag old, and the ones after it.
    pub(crate) fn record_arm_readings(&mut self) {
        let lag = self.config.arm_reading_lag;
        if lag.is_zero() {
            self.arm_readings.clear();
            return;
        }
        let now = self.now;
        let links: BTreeSet<LinkName> = self.instance.links.keys().cloned().collect();
        self.arm_readings.retain(|l, _| links.contains(l));
        for link in links {
            let dbs = self
                .instance
                .links
                .get(&link)
                .map(|l| l.properties.databases.clone())
                .unwrap_or_default();
            let view = self.side_view(Side::ManagedInstance, &link, &dbs);
            let q: &mut VecDeque<ArmReading> = self.arm_readings.entry(link).or_default();
            match q.back_mut() {
                Some(last) if last.at == now => last.view = view,
                Some(last) if last.view == view => {}
                _ => q.push_back(ArmReading { at: now, view }),
            }
            while q.len() >= 2 && q.get(1).is_some_and(|r| r.at.plus(lag) <= now) {
                q.pop_front();
            }
        }
    }

    /// ARM's view of `link`: the instance's view as it was [`SimConfig::arm_reading_lag`]
    /// ago (or, for a link younger than that, as it was first recorded).
    ///
    /// [`SimConfig::arm_reading_lag`]: super::SimConfig::arm_reading_lag
    pub(crate) fn arm_link_view(&mut self, link: &LinkName) -> SideView {
        let dbs = match self.instance.links.get(link) {
            Some(l) => l.properties.databases.clone(),
            None => return SideView::unknown(),
        };
        self.record_arm_readings();
        let lag = self.config.arm_reading_lag;
        let now = self.now;
        self.arm_readings
            .get(link)
            .and_then(|q| {
                q.iter()
                    .rev()
                    .find(|r| r.at.plus(lag) <= now)
                    .or_else(|| q.front())
            })
            .map(|r| r.view.clone())
            .unwrap_or_else(|| self.side_view(Side::ManagedInstance, link, &dbs))
    }
}
