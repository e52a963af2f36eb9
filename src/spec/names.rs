//! Every generated name and data path, in one place: import and batch job names, batch input and
//! output keys, dataset data locations and schedule names (docs/reference.md#data-locations and
//! #generated-names).
//!
//! The validator uses these to check lengths; the reconciler and the scheduler use them to create and
//! find resources, so a resumed run finds the job an earlier run created (idempotency by name).

use chrono::{DateTime, Utc};

use crate::object_url::ObjectUrl;
use crate::spec::kinds::DatasetType;

/// The `currentDate` format of the reference: `2024_01_31_23_59_00`.
pub const TIMESTAMP_FORMAT: &str = "%Y_%m_%d_%H_%M_%S";

/// Length of every [`timestamp`] (years 1000..=9999).
pub const TIMESTAMP_LEN: usize = 19;

/// The longest name Personalize accepts for any resource or job.
pub const MAX_NAME_LEN: usize = 63;

/// `at` in [`TIMESTAMP_FORMAT`].
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format(TIMESTAMP_FORMAT).to_string()
}

/// `dataset_import_<type>_<ts>`.
pub fn import_job_name(dataset_type: DatasetType, at: DateTime<Utc>) -> String {
    format!("dataset_import_{}_{}", dataset_type.key(), timestamp(at))
}

/// The name of a solution version the file leaves unnamed: `<solution>_<ts>`, `ts` being the
/// generation's run start or the schedule's fire instant. Every pass and every replica working on that
/// run computes the same name, so a retried or duplicated create is recognisable as the run's own
/// (Personalize names versions by a random id, which says nothing). A solution name too long to fit
/// is shortened and keeps 8 hex digits of a stable hash of the whole name, so two long names sharing a
/// prefix stay distinct.
pub fn solution_version_name(solution: &str, at: DateTime<Utc>) -> String {
    let room = MAX_NAME_LEN - TIMESTAMP_LEN - 1;
    if solution.len() <= room {
        return format!("{solution}_{}", timestamp(at));
    }
    let hash = solution.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    // Solution names are ASCII (Personalize's name pattern), so any byte index is a char boundary.
    let keep = solution.get(..room - 9).unwrap_or(solution);
    format!("{keep}_{hash:08x}_{}", timestamp(at))
}

/// The name of a version an `update` schedule's fire trains (`UPDATE` mode), when the file leaves
/// versions unnamed: `<solution>_update_<ts>`, shortened as [`solution_version_name`] does. A `full`
/// schedule of the same solution firing at the same instant names its version `<solution>_<ts>`, so
/// the two never share a name.
pub fn update_version_name(solution: &str, at: DateTime<Utc>) -> String {
    solution_version_name(&format!("{solution}_update"), at)
}

/// Which of a solution's batch jobs of one kind a name is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    /// 0-based position in `batchInferenceJobs` (or `batchSegmentJobs`).
    pub index: usize,
    /// How many entries of that kind the solution has.
    pub count: usize,
}

impl BatchEntry {
    /// The 1-based number written into names when the solution has several entries of the kind;
    /// `None` for a lone entry, whose names keep the reference's form.
    pub fn number(self) -> Option<usize> {
        (self.count > 1).then_some(self.index + 1)
    }
}

/// `batch_<solution>_<ts>` for a lone entry, `batch_<solution>_<n>_<ts>` when the solution has several
/// entries of that kind (the reference gave them all one name, docs/reference.md#bugs-we-fix).
/// Inference and segment jobs use the same form, as in the reference.
pub fn batch_job_name(solution: &str, entry: BatchEntry, at: DateTime<Utc>) -> String {
    match entry.number() {
        None => format!("batch_{solution}_{}", timestamp(at)),
        Some(n) => format!("batch_{solution}_{n}_{}", timestamp(at)),
    }
}

/// The key of a solution's batch input file: `batch/<group>/<solution>/job_config.json`.
pub fn batch_input_key(group: &str, solution: &str) -> String {
    format!("batch/{group}/{solution}/job_config.json")
}

/// The key prefix a batch job writes to: `batch/<group>/<solution>/<jobName>/`.
pub fn batch_output_prefix(group: &str, solution: &str, job_name: &str) -> String {
    format!("batch/{group}/{solution}/{job_name}/")
}

/// The folder of an uploaded parameter file: `s3://b/train/g1/config.json` → `s3://b/train/g1`.
/// A file at the bucket root gives the bucket root (empty key).
pub fn config_folder(config: &ObjectUrl) -> ObjectUrl {
    let key = match config.key.trim_end_matches('/').rsplit_once('/') {
        Some((parent, _)) => parent,
        None => "",
    };
    ObjectUrl::new(config.bucket.clone(), key)
}

/// Where a dataset's data is looked for first: the folder `<config folder>/<type>/`, whose direct
/// `.csv` children are imported together.
pub fn data_folder(config_folder: &ObjectUrl, dataset_type: DatasetType) -> ObjectUrl {
    config_folder.join(&format!("{}/", dataset_type.key()))
}

/// Where a dataset's data is looked for when the folder has none: `<config folder>/<type>.csv`.
pub fn data_file(config_folder: &ObjectUrl, dataset_type: DatasetType) -> ObjectUrl {
    config_folder.join(&format!("{}.csv", dataset_type.key()))
}

/// The name to use when `name` is already taken in the account by a job of another owner (job
/// names are account-wide: two groups starting in the same second both want
/// `dataset_import_interactions_<ts>`). Appends `_` and 8 hex digits of a stable hash of `owner` (the
/// dataset or solution version ARN), so every retry and every resumed run of that owner computes the
/// same name. A name too long for the suffix is shortened to stay within [`MAX_NAME_LEN`]; its hash
/// then covers the whole name too, because the cut may remove what told two names apart (the seconds
/// of `batch_<long solution>_<ts>`).
pub fn collision_free(name: &str, owner: &str) -> String {
    let room = MAX_NAME_LEN - 9;
    if name.len() <= room {
        return format!("{name}_{:08x}", fnv1a(owner.bytes()));
    }
    let hash = fnv1a(owner.bytes().chain([b'\n']).chain(name.bytes()));
    // Generated names are ASCII, but a cut must not panic on anything else.
    let mut keep = room;
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}_{hash:08x}", &name[..keep])
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
fn fnv1a(bytes: impl Iterator<Item = u8>) -> u32 {
    bytes.fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The name of a batch job that a scheduled retraining starts for its new solution version: the
/// job name of the fire instant, made distinct by a hash of the version (a [`collision_free`] form
/// with its own salt). A batch schedule firing at the same instant names its job
/// `batch_<solution>_<ts>` (or its collision-free form for its version); each retraining trains its
/// own version; so no two actions ever ask for the same name, and each finds its own job by name
/// after a restart.
pub fn retrain_batch_job_name(
    solution: &str,
    entry: BatchEntry,
    fire: DateTime<Utc>,
    version_arn: &str,
) -> String {
    collision_free(
        &batch_job_name(solution, entry, fire),
        &format!("{version_arn}#retrain"),
    )
}

/// Whether `job` is the job named `name`, or its [`collision_free`] form for `owner`.
pub fn is_job_named(job: &str, name: &str, owner: &str) -> bool {
    job == name || job == collision_free(name, owner)
}

/// Whether `job` is a batch job (of any run) of `solution`'s entry `entry`: `batch_<solution>_<ts>`
/// for a lone entry, `batch_<solution>_<n>_<ts>` for entry n of several, optionally followed by a
/// [`collision_free`] suffix (whose shortening may have cut the end of the timestamp).
pub fn is_batch_job_of(job: &str, solution: &str, entry: BatchEntry) -> bool {
    let Some(rest) = job.strip_prefix(&format!("batch_{solution}_")) else {
        return false;
    };
    let rest = match entry.number() {
        None => rest,
        Some(n) => match rest.strip_prefix(&format!("{n}_")) {
            Some(r) => r,
            None => return false,
        },
    };
    match split_hash(rest) {
        Some(stamp) if job.len() == MAX_NAME_LEN && stamp.len() < TIMESTAMP_LEN => is_timestamp_start(stamp),
        Some(stamp) => is_timestamp(stamp),
        None => is_timestamp(rest),
    }
}

/// Whether `name`, a generated one-shot name, carries the instant `at`: it ends with its timestamp,
/// before an optional [`collision_free`] suffix (whose shortening may have cut the timestamp's end).
pub fn is_stamped_at(name: &str, at: DateTime<Utc>) -> bool {
    let ts = timestamp(at);
    let Some(body) = split_hash(name) else {
        return name.ends_with(&ts);
    };
    if body.ends_with(&ts) {
        return true;
    }
    name.len() == MAX_NAME_LEN
        && (MIN_STAMP..TIMESTAMP_LEN).any(|k| {
            body.strip_suffix(&ts[..k])
                .is_some_and(|before| before.ends_with('_'))
        })
}

/// The fewest timestamp characters a shortened name keeps: the validator bounds batch job names to
/// [`MAX_NAME_LEN`], so a [`collision_free`] suffix cuts at most 9, and the date survives.
const MIN_STAMP: usize = TIMESTAMP_LEN - 9;

/// `name` without a `_` + 8 hex digit suffix, if it has one.
fn split_hash(name: &str) -> Option<&str> {
    let cut = name.len().checked_sub(9)?;
    let (body, tail) = (name.get(..cut)?, name.get(cut..)?);
    (tail.starts_with('_') && tail[1..].bytes().all(|b| b.is_ascii_hexdigit())).then_some(body)
}

fn is_timestamp(s: &str) -> bool {
    s.len() == TIMESTAMP_LEN && chrono::NaiveDateTime::parse_from_str(s, TIMESTAMP_FORMAT).is_ok()
}

/// Whether `s` is the start (at least [`MIN_STAMP`] characters) of a [`TIMESTAMP_FORMAT`] text:
/// digits, with `_` where the format has them.
fn is_timestamp_start(s: &str) -> bool {
    const SHAPE: &[u8; TIMESTAMP_LEN] = b"dddd_dd_dd_dd_dd_dd";
    s.len() >= MIN_STAMP
        && s.len() <= TIMESTAMP_LEN
        && s.bytes().zip(SHAPE.iter()).all(|(b, shape)| match shape {
            b'd' => b.is_ascii_digit(),
            _ => b == b'_',
        })
}

/// What a schedule runs; names the schedule together with its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// `datasetGroup.workflowConfig.schedules.import`, owned by the dataset group.
    DatasetImport,
    /// `solutions[].workflowConfig.schedules.full`.
    SolutionFull,
    /// `solutions[].workflowConfig.schedules.update`.
    SolutionUpdate,
    /// `solutions[].batchInferenceJobs[].workflowConfig.schedule`.
    BatchInference(BatchEntry),
    /// `solutions[].batchSegmentJobs[].workflowConfig.schedule`.
    BatchSegment(BatchEntry),
}

/// The reference's task names (`personalize-dataset-import-<group>`, `solution-maintenance-full-<sol>`,
/// `solution-maintenance-update-<sol>`, `batch-inference-<sol>`, `batch-segment-<sol>`), with `-<n>`
/// added for a solution with several batch entries of one kind (the reference let them overwrite one
/// another, docs/reference.md#bugs-we-fix). Characters outside `[0-9A-Za-z_-]` become `-`, as in the
/// reference.
pub fn schedule_name(kind: ScheduleKind, owner: &str) -> String {
    let name = match kind {
        ScheduleKind::DatasetImport => format!("personalize-dataset-import-{owner}"),
        ScheduleKind::SolutionFull => format!("solution-maintenance-full-{owner}"),
        ScheduleKind::SolutionUpdate => format!("solution-maintenance-update-{owner}"),
        ScheduleKind::BatchInference(entry) => with_number(format!("batch-inference-{owner}"), entry),
        ScheduleKind::BatchSegment(entry) => with_number(format!("batch-segment-{owner}"), entry),
    };
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn with_number(name: String, entry: BatchEntry) -> String {
    match entry.number() {
        None => name,
        Some(n) => format!("{name}-{n}"),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 31, 23, 5, 9)
            .single()
            .expect("valid instant")
    }

    const LONE: BatchEntry = BatchEntry { index: 0, count: 1 };

    #[test]
    fn full_and_update_retrainings_of_one_instant_name_their_versions_apart() {
        for solution in ["shop-up".to_string(), "s".repeat(63)] {
            let (full, update) = (
                solution_version_name(&solution, at()),
                update_version_name(&solution, at()),
            );
            assert_ne!(full, update);
            assert!(update.len() <= MAX_NAME_LEN, "{update}");
            assert!(update.ends_with(&timestamp(at())), "{update}");
        }
        assert_eq!(
            update_version_name("shop-up", at()),
            "shop-up_update_2024_01_31_23_05_09"
        );
    }

    #[test]
    fn solution_version_names_are_deterministic_and_fit() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 5, 10, 53, 53)
            .single()
            .expect("a time");
        assert_eq!(
            solution_version_name("shop-up", at),
            "shop-up_2026_12_05_10_53_53"
        );
        assert_eq!(
            solution_version_name("shop-up", at),
            solution_version_name("shop-up", at)
        );
        let later = at + chrono::Duration::seconds(1);
        assert_ne!(
            solution_version_name("shop-up", at),
            solution_version_name("shop-up", later)
        );
        let long_a = format!("{}a", "s".repeat(62));
        let long_b = format!("{}b", "s".repeat(62));
        let (a, b) = (
            solution_version_name(&long_a, at),
            solution_version_name(&long_b, at),
        );
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert_eq!(b.len(), MAX_NAME_LEN);
        assert_ne!(a, b, "long names sharing a prefix stay distinct");
        assert!(a.ends_with("_2026_12_05_10_53_53"), "{a}");
    }

    #[test]
    fn timestamps_have_the_reference_format_and_a_fixed_length() {
        assert_eq!(timestamp(at()), "2024_01_31_23_05_09");
        assert_eq!(timestamp(at()).len(), TIMESTAMP_LEN);
    }

    #[test]
    fn import_job_names_name_the_dataset_type() {
        assert_eq!(
            import_job_name(DatasetType::Interactions, at()),
            "dataset_import_interactions_2024_01_31_23_05_09"
        );
        assert_eq!(
            import_job_name(DatasetType::Users, at()),
            "dataset_import_users_2024_01_31_23_05_09"
        );
    }

    #[test]
    fn a_lone_batch_entry_keeps_the_reference_name_and_several_are_numbered() {
        assert_eq!(batch_job_name("sol", LONE, at()), "batch_sol_2024_01_31_23_05_09");
        let second = BatchEntry { index: 1, count: 3 };
        assert_eq!(
            batch_job_name("sol", second, at()),
            "batch_sol_2_2024_01_31_23_05_09"
        );
        let first = BatchEntry { index: 0, count: 2 };
        assert_ne!(
            batch_job_name("sol", first, at()),
            batch_job_name("sol", BatchEntry { index: 1, count: 2 }, at())
        );
    }

    #[test]
    fn collision_free_names_are_stable_distinct_per_owner_and_short_enough() {
        let base = import_job_name(DatasetType::Interactions, at());
        let a = collision_free(&base, "arn:aws:personalize:us-east-1:1:dataset/g1/INTERACTIONS");
        let b = collision_free(&base, "arn:aws:personalize:us-east-1:1:dataset/g2/INTERACTIONS");
        assert_ne!(a, b);
        assert_ne!(a, base);
        assert_eq!(
            a,
            collision_free(&base, "arn:aws:personalize:us-east-1:1:dataset/g1/INTERACTIONS")
        );
        assert!(a.starts_with(&base));
        assert!(is_job_named(
            &a,
            &base,
            "arn:aws:personalize:us-east-1:1:dataset/g1/INTERACTIONS"
        ));
        assert!(!is_job_named(
            &b,
            &base,
            "arn:aws:personalize:us-east-1:1:dataset/g1/INTERACTIONS"
        ));
        let long = "x".repeat(MAX_NAME_LEN);
        assert_eq!(collision_free(&long, "o").len(), MAX_NAME_LEN);
    }

    #[test]
    fn batch_job_names_are_recognised_per_entry() {
        let lone = batch_job_name("sol", LONE, at());
        assert!(is_batch_job_of(&lone, "sol", LONE));
        assert!(is_batch_job_of(&collision_free(&lone, "v"), "sol", LONE));
        let second = BatchEntry { index: 1, count: 2 };
        let first = BatchEntry { index: 0, count: 2 };
        let name = batch_job_name("sol", second, at());
        assert!(is_batch_job_of(&name, "sol", second));
        assert!(!is_batch_job_of(&name, "sol", first));
        assert!(!is_batch_job_of(&name, "sol", LONE));
        // Another solution whose name extends this one's is not mistaken for an entry.
        assert!(!is_batch_job_of(
            &batch_job_name("sol_2", LONE, at()),
            "sol",
            LONE
        ));
        assert!(!is_batch_job_of("batch_sol_garbage", "sol", LONE));
        assert!(!is_batch_job_of(&format!("{lone}_zz"), "sol", LONE));
    }

    #[test]
    fn shortened_collision_free_batch_names_are_recognised_and_stay_distinct() {
        // The longest solution name the validator lets through for a lone entry.
        let solution = "s".repeat(MAX_NAME_LEN - "batch__".len() - TIMESTAMP_LEN);
        let plain = batch_job_name(&solution, LONE, at());
        assert_eq!(plain.len(), MAX_NAME_LEN);
        let a = collision_free(&plain, "arn:v2");
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert!(is_batch_job_of(&a, &solution, LONE), "{a}");
        assert!(!is_batch_job_of(&a, &solution, BatchEntry { index: 0, count: 2 }));
        assert!(is_job_named(&a, &plain, "arn:v2"));
        assert!(is_stamped_at(&a, at()), "{a}");
        assert!(!is_stamped_at(&a, at() + chrono::Duration::days(1)), "{a}");
        // The cut removes the seconds; the hash keeps two instants of one version apart.
        let next = batch_job_name(&solution, LONE, at() + chrono::Duration::seconds(1));
        assert_ne!(collision_free(&next, "arn:v2"), a);
        assert_ne!(collision_free(&plain, "arn:v3"), a);
        // A short name keeps its whole text and the owner-only hash of earlier releases.
        let short = batch_job_name("sol", LONE, at());
        assert_eq!(
            collision_free(&short, "arn:v2"),
            format!("{short}_{:08x}", fnv1a("arn:v2".bytes()))
        );
    }

    #[test]
    fn a_retraining_names_its_batch_jobs_apart_from_a_batch_fire_of_the_same_instant() {
        for solution in ["sol".to_string(), "s".repeat(37)] {
            let plain = batch_job_name(&solution, LONE, at());
            let full = retrain_batch_job_name(&solution, LONE, at(), "arn:v3");
            let update = retrain_batch_job_name(&solution, LONE, at(), "arn:v4");
            assert_ne!(full, update);
            for retrain in [&full, &update] {
                assert!(retrain.len() <= MAX_NAME_LEN);
                // Never the batch fire's name, nor its collision-free form on any version.
                assert!(!is_job_named(retrain, &plain, "arn:v3"), "{retrain}");
                assert!(!is_job_named(retrain, &plain, "arn:v4"), "{retrain}");
                assert!(is_batch_job_of(retrain, &solution, LONE), "{retrain}");
                assert!(is_stamped_at(retrain, at()), "{retrain}");
            }
            assert_eq!(full, retrain_batch_job_name(&solution, LONE, at(), "arn:v3"));
        }
    }

    #[test]
    fn stamps_are_read_only_at_the_end_of_a_name() {
        let name = import_job_name(DatasetType::Items, at());
        assert!(is_stamped_at(&name, at()));
        assert!(is_stamped_at(&collision_free(&name, "arn:d"), at()));
        assert!(!is_stamped_at(&name, at() - chrono::Duration::seconds(1)));
        assert!(!is_stamped_at("2024_01_31_23_05_09_sol", at()));
        assert!(!is_batch_job_of("batch_sol_2024_01_3_0123abcd", "sol", LONE));
    }

    #[test]
    fn batch_paths_follow_the_reference_layout() {
        assert_eq!(batch_input_key("g1", "sol"), "batch/g1/sol/job_config.json");
        let job = batch_job_name("sol", LONE, at());
        assert_eq!(
            batch_output_prefix("g1", "sol", &job),
            "batch/g1/sol/batch_sol_2024_01_31_23_05_09/"
        );
    }

    #[test]
    fn data_locations_sit_beside_the_parameter_file() {
        let config = ObjectUrl::new("data", "train/g1/config.json");
        let folder = config_folder(&config);
        assert_eq!(folder.to_string(), "s3://data/train/g1");
        assert_eq!(
            data_folder(&folder, DatasetType::Interactions).to_string(),
            "s3://data/train/g1/interactions/"
        );
        assert_eq!(
            data_file(&folder, DatasetType::Items).to_string(),
            "s3://data/train/g1/items.csv"
        );
        let at_root = config_folder(&ObjectUrl::new("data", "config.json"));
        assert_eq!(at_root.key, "");
        assert_eq!(
            data_file(&at_root, DatasetType::Users).to_string(),
            "s3://data/users.csv"
        );
    }

    #[test]
    fn schedule_names_are_the_reference_task_names_made_safe() {
        assert_eq!(
            schedule_name(ScheduleKind::DatasetImport, "g1"),
            "personalize-dataset-import-g1"
        );
        assert_eq!(
            schedule_name(ScheduleKind::SolutionFull, "sol"),
            "solution-maintenance-full-sol"
        );
        assert_eq!(
            schedule_name(ScheduleKind::SolutionUpdate, "sol"),
            "solution-maintenance-update-sol"
        );
        assert_eq!(
            schedule_name(ScheduleKind::BatchInference(LONE), "sol"),
            "batch-inference-sol"
        );
        assert_eq!(
            schedule_name(
                ScheduleKind::BatchSegment(BatchEntry { index: 2, count: 3 }),
                "sol"
            ),
            "batch-segment-sol-3"
        );
        assert_eq!(
            schedule_name(ScheduleKind::SolutionFull, "a b.c"),
            "solution-maintenance-full-a-b-c"
        );
    }
}
