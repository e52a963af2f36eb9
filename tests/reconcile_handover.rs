//! Two replicas' reconcilers on one group, the lease handed from one to the other and back: what a
//! replica remembers from before the handover must not make it act on a group the other changed.
//!
//! This is the cause of a double announcement the chaos suite found (`kill_9_of_run_at_random_points_with_two_replicas`):
//! replica A listed the solution's versions (none yet: the imports were running), gave the group up
//! between two polls, replica B trained the version and created the campaign, and A, taking the group
//! back, trusted its cached empty listing and trained a second version (a second paid training),
//! then moved the campaign to it and announced the group complete a second time.

mod support;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use personalize_ops::objects::ObjectUrl;
use personalize_ops::reconcile::{Event, LeaseGuard, LeaseLost, PassOutcome, ReconcileError, Reconciler};
use personalize_ops::spec::model::Spec;
use support::reconcile::*;

/// A lease held at `epoch`, always valid: the test decides who holds the group when.
#[derive(Debug)]
struct Held(u64);

impl LeaseGuard for Held {
    fn check(&self) -> Result<(), LeaseLost> {
        Ok(())
    }

    fn tenure(&self) -> Option<u64> {
        Some(self.0)
    }
}

fn run_start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 18, 29, 4)
        .single()
        .expect("valid")
}

async fn pass(r: &Reconciler, spec: &Spec, config: &ObjectUrl, epoch: u64) -> PassOutcome {
    let mut events: Vec<Event> = Vec::new();
    r.scheduled_pass(
        spec,
        config,
        run_start(),
        None,
        Arc::new(Held(epoch)),
        &mut events,
    )
    .await
    .expect("the pass completes")
}

/// Sleeps until the reads a pending pass put off are due again (the reconciler's polls run on the
/// real clock; at most the settings' 0.2 s).
async fn wait_for_polls(outcome: &PassOutcome) {
    if let PassOutcome::Pending { next_poll_after, .. } = outcome {
        tokio::time::sleep(*next_poll_after).await;
    }
}

/// Passes under `epoch`, the emulator's clock moved `step_secs` after each, until converged (at most
/// `limit` passes).
async fn converge(
    emu: &personalize_ops::emulator::Emulator,
    r: &Reconciler,
    spec: &Spec,
    config: &ObjectUrl,
    epoch: u64,
    step_secs: f64,
    limit: usize,
) {
    let mut last = None;
    for _ in 0..limit {
        let outcome = pass(r, spec, config, epoch).await;
        if matches!(outcome, PassOutcome::Converged { .. }) {
            return;
        }
        emu.advance_clock(step_secs).await.expect("clock");
        wait_for_polls(&outcome).await;
        last = Some(outcome);
    }
    panic!("no convergence under epoch {epoch} within {limit} passes: {last:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_taking_a_group_back_does_not_trust_what_it_saw_before_the_handover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "daemon/shop.json");
    // Realistic durations on a clock that moves only when the test says: imports take 900 s.
    let emu = start_emulator(dir.path(), |c| c.time_scale = 1.0).await;
    let settings = settings();
    let (a, b) = (
        reconciler(&emu, dir.path(), &settings),
        reconciler(&emu, dir.path(), &settings),
    );

    // A (epoch 1) builds the group up to the imports, and waits for them with the solution ACTIVE:
    // it has listed the solution's versions, and there were none.
    let mut waiting = false;
    for _ in 0..20 {
        let before = changes(&emu);
        let outcome = pass(&a, &spec, &config, 1).await;
        assert!(
            !matches!(
                outcome,
                PassOutcome::Converged { .. } | PassOutcome::Failed { .. }
            ),
            "{outcome:#?}"
        );
        if calls_of(&emu, "CreateSolution") == 1
            && calls_of(&emu, "CreateDatasetImportJob") == 2
            && changes(&emu) == before
        {
            waiting = true;
            break;
        }
        emu.advance_clock(61.0).await.expect("clock");
        wait_for_polls(&outcome).await;
    }
    assert!(waiting, "A never reached the wait for the imports");
    assert_eq!(calls_of(&emu, "CreateSolutionVersion"), 0);

    // A gives the group up between two polls; B (epoch 2) takes it and converges it.
    emu.advance_clock(1000.0).await.expect("clock");
    converge(&emu, &b, &spec, &config, 2, 1000.0, 30).await;
    assert_eq!(
        calls_of(&emu, "CreateSolutionVersion"),
        1,
        "B trained the version"
    );
    let settled = changes(&emu);

    // A takes the group back (epoch 3): it is converged, and A must change nothing.
    converge(&emu, &a, &spec, &config, 3, 1000.0, 30).await;
    assert_eq!(
        calls_of(&emu, "CreateSolutionVersion"),
        1,
        "A trained a second version from what it saw before the handover"
    );
    assert_eq!(
        changes(&emu),
        settled,
        "A changed a converged group after taking it back: {:?}",
        emu.calls().calls
    );
}

/// The lease of a replica that loses it the instant Personalize received one operation: every check
/// passes until the emulator has counted a call of `op`, and fails from then on. This is a pass stopped
/// by a lost lease right after sending a create (the lease ran out while the create was on the wire):
/// the create happened, and the pass never recorded its answer.
#[derive(Debug)]
struct LostAfter {
    emu: Arc<personalize_ops::emulator::Emulator>,
    op: &'static str,
    epoch: u64,
}

impl LeaseGuard for LostAfter {
    fn check(&self) -> Result<(), LeaseLost> {
        if calls_of(&self.emu, self.op) == 0 {
            Ok(())
        } else {
            Err(LeaseLost {
                group: "shop".into(),
                epoch: self.epoch,
            })
        }
    }

    fn tenure(&self) -> Option<u64> {
        Some(self.epoch)
    }
}

/// A replica's pass sends CreateSolutionVersion and stops on a lost lease before it records the
/// answer. Nobody else takes the group, so the same replica's next tenure is its own epoch + 1 and
/// its observations are kept; but what the unrecorded create changed must not be: before the fix the
/// cached listing (no versions) survived, and the next pass trained a second version (two paid
/// trainings for one file, as the chaos suite's kill -9 case found).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_never_recorded_is_looked_for_before_it_is_sent_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "daemon/shop.json");
    let emu = Arc::new(start_emulator(dir.path(), |c| c.time_scale = 1.0).await);
    let a = reconciler(&emu, dir.path(), &settings());
    let guard = Arc::new(LostAfter {
        emu: Arc::clone(&emu),
        op: "CreateSolutionVersion",
        epoch: 1,
    });

    // Epoch 1: passes until the one that sends the version's create and then finds the lease gone.
    let mut stopped = false;
    for _ in 0..30 {
        let mut events: Vec<Event> = Vec::new();
        let result = a
            .scheduled_pass(&spec, &config, run_start(), None, guard.clone(), &mut events)
            .await;
        match result {
            Err(ReconcileError::LeaseLost { .. }) => {
                stopped = true;
                break;
            }
            Ok(outcome) => {
                assert!(
                    !matches!(
                        outcome,
                        PassOutcome::Converged { .. } | PassOutcome::Failed { .. }
                    ),
                    "{outcome:#?}"
                );
                emu.advance_clock(1000.0).await.expect("clock");
                wait_for_polls(&outcome).await;
            }
            Err(e) => panic!("the pass failed: {e}"),
        }
    }
    assert!(stopped, "the pass never sent CreateSolutionVersion");
    assert_eq!(calls_of(&emu, "CreateSolutionVersion"), 1);

    // The version trains to ACTIVE; the same replica takes the group again (epoch 2, nobody in
    // between) and converges it.
    emu.advance_clock(10_000.0).await.expect("clock");
    converge(&emu, &a, &spec, &config, 2, 1000.0, 30).await;
    let client = client(&emu);
    let solutions = client.list_solutions().send().await.expect("solutions");
    let solution = solutions.solutions()[0].solution_arn().expect("arn");
    let versions = client
        .list_solution_versions()
        .solution_arn(solution)
        .send()
        .await
        .expect("versions");
    assert_eq!(versions.solution_versions().len(), 1, "one training for one file");
    assert_eq!(
        calls_of(&emu, "CreateSolutionVersion"),
        1,
        "the replica sent the version's create again from a listing taken before its first one"
    );
}

/// Without a handover (the replica's own next tenure, epoch + 1) nothing is lost either: the
/// reconciler keeps its memory, and a group it converged stays converged without a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_replica_s_next_tenure_converges_without_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, spec) = lay_out(dir.path(), "daemon/shop.json");
    let emu = start_emulator(dir.path(), |c| c.time_scale = 1.0).await;
    let r = reconciler(&emu, dir.path(), &settings());
    converge(&emu, &r, &spec, &config, 7, 1000.0, 40).await;
    let settled = changes(&emu);
    converge(&emu, &r, &spec, &config, 8, 1000.0, 5).await;
    assert_eq!(changes(&emu), settled);
    assert_eq!(calls_of(&emu, "CreateSolutionVersion"), 1);
}
