//! SKU recommendation: service tier, vCores and storage for the managed instance, from the facts
//! and, when given, performance samples (milink-facts §5.2), within the tier limits of §5.3.

use serde::{Deserialize, Serialize};

use crate::assess::facts::{DatabaseFacts, InstanceFacts, ServiceTier};

/// The limits of one service tier (milink-facts §5.3; standard-series Gen5 hardware for
/// General Purpose and Business Critical, premium-series for Next-gen General Purpose).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TierLimits {
    /// The tier.
    pub tier: ServiceTier,
    /// The hardware these numbers are for.
    pub hardware: &'static str,
    /// vCore sizes on that hardware.
    pub vcore_options: &'static [u32],
    /// Memory per vCore, GB.
    pub memory_gb_per_vcore: f64,
    /// Databases per instance.
    pub max_databases: u32,
    /// In-Memory OLTP supported.
    pub in_memory_oltp: bool,
    /// Log write throughput per vCore, MiB/s.
    pub log_mib_s_per_vcore: f64,
    /// Log write throughput cap per instance, MiB/s.
    pub log_mib_s_cap: f64,
    /// Typical I/O latency, ms (low, high).
    pub io_latency_ms: (u32, u32),
}

const GEN5_VCORES: &[u32] = &[4, 8, 16, 24, 32, 40, 64, 80];
const PREMIUM_VCORES: &[u32] = &[4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 128];

/// General Purpose limits.
pub const GENERAL_PURPOSE: TierLimits = TierLimits {
    tier: ServiceTier::GeneralPurpose,
    hardware: "standard-series (Gen5)",
    vcore_options: GEN5_VCORES,
    memory_gb_per_vcore: 5.1,
    max_databases: 100,
    in_memory_oltp: false,
    log_mib_s_per_vcore: 4.5,
    log_mib_s_cap: 120.0,
    io_latency_ms: (5, 10),
};

/// Next-gen General Purpose limits.
pub const NEXT_GEN_GENERAL_PURPOSE: TierLimits = TierLimits {
    tier: ServiceTier::NextGenGeneralPurpose,
    hardware: "premium-series",
    vcore_options: PREMIUM_VCORES,
    memory_gb_per_vcore: 7.0,
    max_databases: 500,
    in_memory_oltp: false,
    log_mib_s_per_vcore: 4.5,
    log_mib_s_cap: 192.0,
    io_latency_ms: (3, 5),
};

/// Business Critical limits.
pub const BUSINESS_CRITICAL: TierLimits = TierLimits {
    tier: ServiceTier::BusinessCritical,
    hardware: "standard-series (Gen5)",
    vcore_options: GEN5_VCORES,
    memory_gb_per_vcore: 5.1,
    max_databases: 100,
    in_memory_oltp: true,
    log_mib_s_per_vcore: 4.5,
    log_mib_s_cap: 96.0,
    io_latency_ms: (1, 2),
};

/// Storage is reserved in steps of this many GB.
pub const STORAGE_STEP_GB: u64 = 32;

impl TierLimits {
    /// The limits of `tier`.
    pub fn of(tier: ServiceTier) -> &'static TierLimits {
        match tier {
            ServiceTier::GeneralPurpose => &GENERAL_PURPOSE,
            ServiceTier::NextGenGeneralPurpose => &NEXT_GEN_GENERAL_PURPOSE,
            ServiceTier::BusinessCritical => &BUSINESS_CRITICAL,
        }
    }

    /// Maximum reserved storage, GB, at `vcores`.
    pub fn max_storage_gb(&self, vcores: u32) -> u64 {
        const TB: u64 = 1024;
        match self.tier {
            ServiceTier::GeneralPurpose => match vcores {
                0..=4 => 2 * TB,
                5..=8 => 8 * TB,
                _ => 16 * TB,
            },
            ServiceTier::NextGenGeneralPurpose => match vcores {
                0..=4 => 2 * TB,
                5..=8 => 8 * TB,
                9..=31 => 16 * TB,
                _ => 32 * TB,
            },
            ServiceTier::BusinessCritical => match vcores {
                0..=16 => TB,
                17..=24 => 2 * TB,
                _ => 4 * TB,
            },
        }
    }

    /// The largest storage the tier offers at any size.
    pub fn absolute_max_storage_gb(&self) -> u64 {
        self.vcore_options
            .iter()
            .map(|v| self.max_storage_gb(*v))
            .max()
            .unwrap_or(0)
    }

    /// Log write throughput at `vcores`, MiB/s.
    pub fn log_mib_s(&self, vcores: u32) -> f64 {
        (self.log_mib_s_per_vcore * f64::from(vcores)).min(self.log_mib_s_cap)
    }

    /// IOPS the tier gives at `vcores` and `storage_gb`. General Purpose: 7,500 (the per-file
    /// maximum); Next-gen: 3 per reserved GB (min 300), capped at about 1,600 per vCore and
    /// 80,000; Business Critical: 4,000 per vCore.
    pub fn iops(&self, vcores: u32, storage_gb: u64) -> f64 {
        match self.tier {
            ServiceTier::GeneralPurpose => 7_500.0,
            ServiceTier::NextGenGeneralPurpose => {
                let by_storage = (3.0 * storage_gb as f64).max(300.0);
                by_storage.min(1_600.0 * f64::from(vcores)).min(80_000.0)
            }
            ServiceTier::BusinessCritical => 4_000.0 * f64::from(vcores),
        }
    }
}

/// Performance samples of the source, one value per sample interval (e.g. 30 s).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfSamples {
    /// Instance CPU utilization, percent of all the source's cores.
    pub cpu_percent: Vec<f64>,
    /// Memory in use by SQL Server, MB.
    pub memory_mb: Vec<f64>,
    /// Read + write IOPS (data and log files).
    pub iops: Vec<f64>,
    /// Log write throughput, MiB/s.
    pub log_write_mib_s: Vec<f64>,
}

/// How samples are summarised.
///
/// Read from data (JSON, Python) only within range: a percentile in 0–100 and a comfort factor
/// of at least 1%, or a typed refusal naming the field ([`SkuOptions::validate`]). Built in
/// Rust out of range, [`recommend`] clamps the percentile to 0–100 and the factor to 1%.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SkuOptionsData")]
pub struct SkuOptions {
    /// Percentile of the samples (default 95).
    pub percentile: f64,
    /// Comfort factor applied to every requirement, percent (default 100).
    pub scale_factor_percent: u32,
}

/// [`SkuOptions`] as read, before its ranges are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkuOptionsData {
    percentile: f64,
    scale_factor_percent: u32,
}

impl TryFrom<SkuOptionsData> for SkuOptions {
    type Error = String;

    fn try_from(d: SkuOptionsData) -> Result<Self, String> {
        let options = SkuOptions {
            percentile: d.percentile,
            scale_factor_percent: d.scale_factor_percent,
        };
        options.validate()?;
        Ok(options)
    }
}

impl SkuOptions {
    /// Checks the ranges: `percentile` in 0–100, `scale_factor_percent` at least 1.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.percentile.is_finite() && (0.0..=100.0).contains(&self.percentile)) {
            return Err(format!(
                "percentile {} is outside 0–100; use e.g. 95 for the 95th percentile",
                self.percentile
            ));
        }
        if self.scale_factor_percent == 0 {
            return Err(
                "scale_factor_percent 0 would size the instance for nothing; use 100 for the \
                 measured load, more for headroom"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

impl Default for SkuOptions {
    fn default() -> Self {
        SkuOptions {
            percentile: 95.0,
            scale_factor_percent: 100,
        }
    }
}

/// The recommended managed instance size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuRecommendation {
    /// Service tier.
    pub tier: ServiceTier,
    /// Hardware.
    pub hardware: String,
    /// vCores.
    pub vcores: u32,
    /// Reserved storage, GB (a multiple of 32).
    pub storage_gb: u64,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// Whether performance samples were used.
    pub from_samples: bool,
    /// The percentile used.
    pub percentile: f64,
    /// The scale factor used, percent.
    pub scale_factor_percent: u32,
}

/// The `p`th percentile of `samples` (nearest rank); `None` when empty or all values are not
/// numbers.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

fn round_storage(gb: f64) -> u64 {
    let gb = gb.max(1.0).ceil() as u64;
    gb.div_ceil(STORAGE_STEP_GB).max(1) * STORAGE_STEP_GB
}

/// Recommends a managed instance for the `databases` to migrate from `instance`.
pub fn recommend(
    instance: &InstanceFacts,
    databases: &[&DatabaseFacts],
    samples: Option<&PerfSamples>,
    options: &SkuOptions,
) -> SkuRecommendation {
    let scale = f64::from(options.scale_factor_percent.max(1)) / 100.0;
    let pct = options.percentile;
    let mut reasons = Vec::new();
    let at = |v: &Vec<f64>| percentile(v, pct);
    let samples = samples.filter(|s| {
        !(s.cpu_percent.is_empty()
            && s.memory_mb.is_empty()
            && s.iops.is_empty()
            && s.log_write_mib_s.is_empty())
    });

    // Requirements.
    let size_mb: u64 = databases
        .iter()
        .fold(0u64, |total, d| total.saturating_add(d.size_mb()));
    let storage_need_gb = size_mb as f64 / 1024.0 * scale;
    let in_memory: Vec<&str> = databases
        .iter()
        .filter(|d| d.uses_in_memory_oltp())
        .map(|d| d.name.as_str())
        .collect();
    let cpu_cores = f64::from(instance.cpu_count.max(1));
    let (cpu_need, memory_need_gb, iops_need, log_need) = match samples {
        Some(s) => (
            at(&s.cpu_percent).map(|p| p / 100.0 * cpu_cores * scale),
            at(&s.memory_mb).map(|m| m / 1024.0 * scale),
            at(&s.iops).map(|x| x * scale),
            at(&s.log_write_mib_s).map(|x| x * scale),
        ),
        None => {
            let mem = instance
                .max_server_memory_mb
                .min(instance.physical_memory_mb.max(1));
            reasons.push(format!(
                "no performance samples: sized to match the source's {} logical CPUs and {} MB of memory",
                instance.cpu_count, mem
            ));
            (
                Some(cpu_cores * scale),
                Some(mem as f64 / 1024.0 * scale),
                None,
                None,
            )
        }
    };
    if let Some(s) = samples {
        reasons.push(format!(
            "from {} performance samples at the {}th percentile, scale factor {}%",
            s.cpu_percent
                .len()
                .max(s.memory_mb.len())
                .max(s.iops.len())
                .max(s.log_write_mib_s.len()),
            pct,
            options.scale_factor_percent
        ));
    }

    // Tier.
    let tier = if !in_memory.is_empty() {
        reasons.push(format!(
            "Business Critical because of In-Memory OLTP in {} (General Purpose tiers don't support it)",
            in_memory.join(", ")
        ));
        ServiceTier::BusinessCritical
    } else if databases.len() > 100 {
        reasons.push(format!(
            "Next-gen General Purpose because {} databases exceed the 100-database limit of General Purpose",
            databases.len()
        ));
        ServiceTier::NextGenGeneralPurpose
    } else if storage_need_gb > GENERAL_PURPOSE.absolute_max_storage_gb() as f64 {
        reasons.push(format!(
            "Next-gen General Purpose because {:.0} GB exceed the 16 TB of General Purpose",
            storage_need_gb
        ));
        ServiceTier::NextGenGeneralPurpose
    } else if let Some(iops) = iops_need.filter(|i| *i > GENERAL_PURPOSE.iops(80, 0)) {
        if iops <= NEXT_GEN_GENERAL_PURPOSE.iops(128, u64::MAX / 4) {
            reasons.push(format!(
                "Next-gen General Purpose because {iops:.0} IOPS exceed the 7,500 IOPS per file of General Purpose"
            ));
            ServiceTier::NextGenGeneralPurpose
        } else {
            reasons.push(format!(
                "Business Critical because {iops:.0} IOPS exceed what General Purpose tiers give"
            ));
            ServiceTier::BusinessCritical
        }
    } else if let Some(log) = log_need.filter(|l| *l > GENERAL_PURPOSE.log_mib_s_cap) {
        reasons.push(format!(
            "Next-gen General Purpose because {log:.1} MiB/s of log writes exceed the 120 MiB/s of General Purpose"
        ));
        ServiceTier::NextGenGeneralPurpose
    } else {
        reasons.push("General Purpose: no In-Memory OLTP, and the databases, storage, IOPS and log throughput fit it".to_owned());
        ServiceTier::GeneralPurpose
    };
    let limits = TierLimits::of(tier);

    // Storage, then vCores.
    let mut storage_gb = round_storage(storage_need_gb);
    if tier == ServiceTier::NextGenGeneralPurpose
        && let Some(iops) = iops_need
    {
        let for_iops = round_storage(iops / 3.0);
        if for_iops > storage_gb {
            reasons.push(format!(
                "{for_iops} GB reserved so that Next-gen General Purpose gives {iops:.0} IOPS (3 IOPS per GB)"
            ));
            storage_gb = for_iops;
        }
    }
    let mut needs: Vec<(f64, String)> = Vec::new();
    if let Some(c) = cpu_need {
        needs.push((c, format!("{c:.1} vCores of CPU")));
    }
    if let Some(m) = memory_need_gb {
        needs.push((
            m / limits.memory_gb_per_vcore,
            format!(
                "{m:.1} GB of memory at {} GB per vCore",
                limits.memory_gb_per_vcore
            ),
        ));
    }
    if let Some(l) = log_need {
        needs.push((
            l / limits.log_mib_s_per_vcore,
            format!(
                "{l:.1} MiB/s of log writes at {} MiB/s per vCore",
                limits.log_mib_s_per_vcore
            ),
        ));
    }
    if let Some(i) = iops_need {
        match tier {
            ServiceTier::BusinessCritical => {
                needs.push((i / 4_000.0, format!("{i:.0} IOPS at 4,000 IOPS per vCore")));
            }
            ServiceTier::NextGenGeneralPurpose => {
                needs.push((
                    i / 1_600.0,
                    format!("{i:.0} IOPS at about 1,600 IOPS per vCore"),
                ));
            }
            ServiceTier::GeneralPurpose => {}
        }
    }
    let need = needs.iter().map(|(n, _)| *n).fold(0.0_f64, f64::max);
    let fits = |v: u32| f64::from(v) >= need && limits.max_storage_gb(v) >= storage_gb;
    let largest = limits.vcore_options.last().copied().unwrap_or(4);
    let vcores = match limits.vcore_options.iter().copied().find(|v| fits(*v)) {
        Some(v) => v,
        None => {
            reasons.push(format!(
                "the requirements exceed the largest {tier} size ({largest} vCores, {} GB); split the databases across instances",
                limits.max_storage_gb(largest)
            ));
            largest
        }
    };
    if let Some((_, why)) = needs
        .iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(n, _)| *n > 0.0)
    {
        reasons.push(format!("{vcores} vCores: the largest requirement is {why}"));
    }
    if limits.max_storage_gb(vcores) < storage_gb {
        storage_gb = limits.max_storage_gb(vcores);
    } else if f64::from(vcores) > need.ceil().max(4.0)
        && limits
            .vcore_options
            .iter()
            .any(|v| f64::from(*v) >= need && *v < vcores)
    {
        reasons.push(format!(
            "{vcores} vCores so that {storage_gb} GB of storage fit ({tier} allows {} GB at this size)",
            limits.max_storage_gb(vcores)
        ));
    }
    reasons.push(format!(
        "{storage_gb} GB of storage: {size_mb} MB of data and log in {} database(s), in {STORAGE_STEP_GB} GB steps",
        databases.len()
    ));

    SkuRecommendation {
        tier,
        hardware: limits.hardware.to_owned(),
        vcores,
        storage_gb,
        reasons,
        from_samples: samples.is_some(),
        percentile: pct,
        scale_factor_percent: options.scale_factor_percent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::fixtures;

    fn lab() -> fixtures::TailspinLab {
        fixtures::tailspin()
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[3.0, f64::NAN, 1.0], 50.0), Some(1.0));
        assert_eq!(percentile(&[], 95.0), None);
    }

    #[test]
    fn storage_rounds_up_to_32_gb_steps() {
        assert_eq!(round_storage(0.0), 32);
        assert_eq!(round_storage(32.0), 32);
        assert_eq!(round_storage(32.1), 64);
        assert_eq!(round_storage(1000.0), 1024);
    }

    #[test]
    fn toystore_without_samples_is_general_purpose_sized_like_the_source() {
        let lab = lab();
        let toy = lab.database("ToyStore").unwrap();
        let r = recommend(&lab.instance, &[toy], None, &SkuOptions::default());
        assert_eq!(r.tier, ServiceTier::GeneralPurpose);
        // 8 logical CPUs and 28 GB of max server memory: 8 vCores (28 / 5.1 = 5.5).
        assert_eq!(r.vcores, 8);
        assert_eq!(r.storage_gb % STORAGE_STEP_GB, 0);
        assert!(r.storage_gb * 1024 >= toy.size_mb());
        assert!(!r.from_samples);
        assert!(
            r.reasons
                .iter()
                .any(|x| x.contains("no performance samples"))
        );
    }

    #[test]
    fn in_memory_oltp_forces_business_critical_with_the_reason() {
        let mut lab = lab();
        let db = lab.database_mut("ToyStore").unwrap();
        db.catalog.as_mut().unwrap().memory_optimized_filegroup = Some("imoltp".into());
        let toy = lab.database("ToyStore").unwrap();
        let r = recommend(&lab.instance, &[toy], None, &SkuOptions::default());
        assert_eq!(r.tier, ServiceTier::BusinessCritical);
        assert!(
            r.reasons[1].contains("Business Critical because of In-Memory OLTP in ToyStore"),
            "{:?}",
            r.reasons
        );
    }

    #[test]
    fn samples_size_vcores_at_the_percentile_with_the_scale_factor() {
        let lab = lab();
        let toy = lab.database("ToyStore").unwrap();
        // 8 cores; 95th percentile of CPU is 95% -> 7.6 cores -> 8 vCores.
        let samples = PerfSamples {
            cpu_percent: (1..=100).map(f64::from).collect(),
            memory_mb: vec![4096.0; 10],
            ..PerfSamples::default()
        };
        let r = recommend(
            &lab.instance,
            &[toy],
            Some(&samples),
            &SkuOptions::default(),
        );
        assert_eq!((r.tier, r.vcores), (ServiceTier::GeneralPurpose, 8));
        assert!(r.from_samples);
        // The same at 150%: 11.4 cores -> 16 vCores.
        let r = recommend(
            &lab.instance,
            &[toy],
            Some(&samples),
            &SkuOptions {
                scale_factor_percent: 150,
                ..SkuOptions::default()
            },
        );
        assert_eq!(r.vcores, 16);
        // Low CPU: the 4-vCore minimum.
        let idle = PerfSamples {
            cpu_percent: vec![5.0; 50],
            memory_mb: vec![1024.0; 50],
            ..PerfSamples::default()
        };
        let r = recommend(&lab.instance, &[toy], Some(&idle), &SkuOptions::default());
        assert_eq!(r.vcores, 4);
    }

    #[test]
    fn io_and_log_throughput_choose_the_tier() {
        let lab = lab();
        let toy = lab.database("ToyStore").unwrap();
        let busy_log = PerfSamples {
            cpu_percent: vec![10.0; 20],
            log_write_mib_s: vec![150.0; 20],
            ..PerfSamples::default()
        };
        let r = recommend(
            &lab.instance,
            &[toy],
            Some(&busy_log),
            &SkuOptions::default(),
        );
        assert_eq!(r.tier, ServiceTier::NextGenGeneralPurpose);
        assert!(f64::from(r.vcores) * 4.5 >= 150.0);
        let busy_io = PerfSamples {
            cpu_percent: vec![10.0; 20],
            iops: vec![30_000.0; 20],
            ..PerfSamples::default()
        };
        let r = recommend(
            &lab.instance,
            &[toy],
            Some(&busy_io),
            &SkuOptions::default(),
        );
        assert_eq!(r.tier, ServiceTier::NextGenGeneralPurpose);
        assert!(NEXT_GEN_GENERAL_PURPOSE.iops(r.vcores, r.storage_gb) >= 30_000.0);
        let huge_io = PerfSamples {
            iops: vec![200_000.0; 20],
            ..PerfSamples::default()
        };
        let r = recommend(
            &lab.instance,
            &[toy],
            Some(&huge_io),
            &SkuOptions::default(),
        );
        assert_eq!((r.tier, r.vcores), (ServiceTier::BusinessCritical, 64));
    }

    #[test]
    fn storage_drives_vcores_and_tier() {
        let mut lab = lab();
        lab.database_mut("ToyStore").unwrap().data_size_mb = 5 * 1024 * 1024; // 5 TB
        let toy = lab.database("ToyStore").unwrap();
        let idle = PerfSamples {
            cpu_percent: vec![5.0; 10],
            ..PerfSamples::default()
        };
        let r = recommend(&lab.instance, &[toy], Some(&idle), &SkuOptions::default());
        // 5 TB needs 8 vCores on General Purpose (2 TB at 4).
        assert_eq!((r.tier, r.vcores), (ServiceTier::GeneralPurpose, 8));
        assert!(
            r.reasons.iter().any(|x| x.contains("so that")),
            "{:?}",
            r.reasons
        );
        lab.database_mut("ToyStore").unwrap().data_size_mb = 20 * 1024 * 1024; // 20 TB
        let toy = lab.database("ToyStore").unwrap();
        let r = recommend(&lab.instance, &[toy], Some(&idle), &SkuOptions::default());
        assert_eq!((r.tier, r.vcores), (ServiceTier::NextGenGeneralPurpose, 32));
    }

    #[test]
    fn tier_limits_follow_the_reference() {
        assert_eq!(GENERAL_PURPOSE.max_storage_gb(4), 2048);
        assert_eq!(GENERAL_PURPOSE.max_storage_gb(8), 8192);
        assert_eq!(GENERAL_PURPOSE.max_storage_gb(16), 16384);
        assert_eq!(NEXT_GEN_GENERAL_PURPOSE.max_storage_gb(32), 32768);
        assert_eq!(BUSINESS_CRITICAL.max_storage_gb(16), 1024);
        assert_eq!(BUSINESS_CRITICAL.max_storage_gb(24), 2048);
        assert_eq!(BUSINESS_CRITICAL.max_storage_gb(80), 4096);
        assert_eq!(
            (
                GENERAL_PURPOSE.max_databases,
                NEXT_GEN_GENERAL_PURPOSE.max_databases,
                BUSINESS_CRITICAL.max_databases
            ),
            (100, 500, 100)
        );
        assert_eq!(GENERAL_PURPOSE.log_mib_s(80), 120.0);
        assert_eq!(GENERAL_PURPOSE.log_mib_s(8), 36.0);
    }
}
