//! The emulator's clock (wall time plus an adjustable offset) and how long each transition takes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::arn::Kind;
use super::lifecycle::Phases;
use crate::locks::LockRecovering;

/// Wall-clock epoch seconds plus an offset that tests move forward (`POST /_emulator/clock`), so a
/// lifecycle can be walked step by step without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset_secs: Mutex<f64>,
}

impl Clock {
    /// Emulator time in epoch seconds (fractional, as Personalize timestamps are).
    pub fn now(&self) -> f64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        // Millisecond precision keeps timestamps readable and round-trippable through JSON.
        ((wall + self.offset()) * 1000.0).round() / 1000.0
    }

    pub fn offset(&self) -> f64 {
        *self.offset_secs.lock_recovering()
    }

    pub fn set_offset(&self, secs: f64) {
        *self.offset_secs.lock_recovering() = secs;
    }

    /// Moves the clock forward by `secs` (never backward: timelines assume time only grows).
    pub fn advance(&self, secs: f64) {
        let mut offset = self.offset_secs.lock_recovering();
        *offset += secs.max(0.0);
    }
}

/// Realistic durations in seconds at time scale 1 (docs/personalize.md#quotas-and-durations), and
/// the time scale that multiplies them. Scale 0 makes everything near-instant (the default for tests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Durations {
    /// Multiplies every duration; 0.001 turns a 2 h training into 7.2 s.
    pub time_scale: f64,
    /// Total creation time per kind (pending + in progress); the first tenth is `CREATE PENDING`.
    pub create_secs: BTreeMap<Kind, f64>,
    /// Total deletion time (`DELETE PENDING` + `DELETE IN_PROGRESS`).
    pub delete_secs: f64,
    /// Total time of an update (campaign, solution, dataset, recommender).
    pub update_secs: f64,
    /// `CREATE STOPPING` of a solution version, and each of a recommender's stop and start.
    pub stop_secs: f64,
}

impl Default for Durations {
    fn default() -> Self {
        let create_secs = [
            (Kind::DatasetGroup, 60.0),
            (Kind::Schema, 0.0),
            (Kind::Dataset, 60.0),
            (Kind::DatasetImportJob, 900.0),
            (Kind::EventTracker, 60.0),
            (Kind::Filter, 120.0),
            (Kind::Solution, 60.0),
            (Kind::SolutionVersion, 7200.0),
            (Kind::Campaign, 600.0),
            (Kind::Recommender, 3600.0),
            (Kind::BatchInferenceJob, 1800.0),
            (Kind::BatchSegmentJob, 1800.0),
        ]
        .into_iter()
        .collect();
        Self {
            time_scale: 0.0,
            create_secs,
            delete_secs: 60.0,
            update_secs: 600.0,
            stop_secs: 300.0,
        }
    }
}

impl Durations {
    /// Realistic durations at the given scale.
    pub fn scaled(time_scale: f64) -> Self {
        Self {
            time_scale,
            ..Self::default()
        }
    }

    fn split(&self, total: f64) -> Phases {
        let total = (total * self.time_scale).max(0.0);
        Phases {
            pending: total * 0.1,
            in_progress: total * 0.9,
        }
    }

    pub fn create(&self, kind: Kind) -> Phases {
        self.split(self.create_secs.get(&kind).copied().unwrap_or(60.0))
    }

    pub fn delete(&self) -> Phases {
        self.split(self.delete_secs)
    }

    pub fn update(&self) -> Phases {
        self.split(self.update_secs)
    }

    pub fn stop(&self) -> Phases {
        self.split(self.stop_secs)
    }

    /// Parses `KIND=SECS,...` overrides of creation times (`solution-version=7200,campaign=600`); the
    /// pseudo-kinds `delete`, `update` and `stop` set those durations.
    pub fn apply_overrides(&mut self, spec: &str) -> Result<(), String> {
        for (key, secs) in overrides(
            spec,
            "duration",
            "KIND=SECONDS",
            "a number of seconds ≥ 0",
            |s: &f64| s.is_finite() && *s >= 0.0,
        )? {
            match key {
                "delete" => self.delete_secs = secs,
                "update" => self.update_secs = secs,
                "stop" => self.stop_secs = secs,
                kind => {
                    let kind: Kind = kind.parse()?;
                    self.create_secs.insert(kind, secs);
                }
            }
        }
        Ok(())
    }
}

/// Parses `KEY=VALUE,...` (the `--durations` and `--quotas` forms): each value must parse as `T`
/// and pass `ok`. Errors name the entry as a `what`, the expected `form` and what a value must be.
pub fn overrides<'a, T: std::str::FromStr>(
    spec: &'a str,
    what: &str,
    form: &str,
    must_be: &str,
    ok: impl Fn(&T) -> bool,
) -> Result<Vec<(&'a str, T)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| format!("{what} {entry:?}: expected {form}"))?;
            let parsed = value
                .trim()
                .parse::<T>()
                .ok()
                .filter(&ok)
                .ok_or_else(|| format!("{what} {entry:?}: {value:?} is not {must_be}"))?;
            Ok((key.trim(), parsed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_multiplies_realistic_durations() {
        let d = Durations::scaled(0.001);
        let p = d.create(Kind::SolutionVersion);
        assert!((p.pending + p.in_progress - 7.2).abs() < 1e-9);
        let zero = Durations::default().create(Kind::Campaign);
        assert_eq!(zero.pending + zero.in_progress, 0.0);
    }

    #[test]
    fn overrides_parse_and_reject_garbage() {
        let mut d = Durations::scaled(1.0);
        d.apply_overrides("campaign=30, delete=5").expect("valid");
        let c = d.create(Kind::Campaign);
        assert!((c.pending + c.in_progress - 30.0).abs() < 1e-9);
        assert!((d.delete().pending + d.delete().in_progress - 5.0).abs() < 1e-9);
        assert!(d.apply_overrides("campaign").is_err());
        assert!(d.apply_overrides("campaign=-1").is_err());
        assert!(d.apply_overrides("widget=3").is_err());
    }

    #[test]
    fn the_clock_only_moves_forward() {
        let c = Clock::default();
        let before = c.now();
        c.advance(3600.0);
        c.advance(-100.0);
        assert!(c.now() - before >= 3599.0);
    }
}
