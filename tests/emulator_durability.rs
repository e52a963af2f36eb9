//! Acknowledged means durable in the built-in Personalize: a change is saved before it is answered,
//! survives a kill -9 the instant after, survives a torn log tail, and a change that cannot be
//! saved is refused (503) and undone instead of acknowledged.
//!
//! The kill -9 cases run the `personalize-ops emulate` binary; their random choices come from
//! seeds printed before each run (`DURABILITY_SEED=<n>` replays one).

mod support;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use personalize_ops::objects::MemoryStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use support::emulator::*;

/// `personalize-ops emulate` on a free loopback port with a state directory; returns the child
/// and the URL it printed.
fn start_emulate(state: &Path, data: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_personalize-ops"))
        .args([
            "emulate",
            "--listen",
            "127.0.0.1:0",
            "--quotas",
            "dataset-groups=100",
        ])
        .arg("--state-dir")
        .arg(state)
        .arg("--data-dir")
        .arg(data)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("emulate starts");
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("reads");
    let url = line.trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "emulate printed its URL first: {line:?}"
    );
    (child, url)
}

/// kill -9 right after acknowledged creates: each round starts `emulate` on the same state
/// directory, checks that everything acknowledged before is there, makes 1–6 creates (concurrent,
/// so several share one sync), and kills the process the instant the last answer arrives (or a
/// random few milliseconds later). Some rounds also leave a torn record at the end of the log, as
/// a kill during an append would. Before the write-ahead log, the emulator answered first and
/// saved up to 20 ms later: nearly every round lost its creates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_acknowledged_creates_loses_none_of_them() {
    for seed in seeds("DURABILITY_SEED", "emulator kill -9", 3) {
        let mut rng = StdRng::seed_from_u64(seed);
        let state = tempfile::tempdir().expect("state dir");
        let data = tempfile::tempdir().expect("data dir");
        let (mut groups, mut schemas): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        for round in 0..8 {
            let (mut child, url) = start_emulate(state.path(), data.path());
            let client = personalize_at(&url);
            let mut expected = groups.clone();
            expected.sort();
            assert_eq!(
                group_names(&client).await,
                expected,
                "seed {seed}, round {round}: every acknowledged dataset group is back"
            );
            let mut expected = schemas.clone();
            expected.sort();
            assert_eq!(
                schema_names(&client).await,
                expected,
                "seed {seed}, round {round}: every acknowledged schema is back"
            );
            let creates = rng.random_range(1..=6usize);
            let calls = (0..creates).map(|i| {
                let client = client.clone();
                let group = rng.random_bool(0.5);
                let name = format!("r{round}-{i}");
                async move {
                    let answer = if group {
                        client
                            .create_dataset_group()
                            .name(&name)
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| format!("{e:?}"))
                    } else {
                        client
                            .create_schema()
                            .name(&name)
                            .schema(INTERACTIONS_SCHEMA)
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| format!("{e:?}"))
                    };
                    (group, name, answer)
                }
            });
            for (group, name, answer) in futures::future::join_all(calls).await {
                answer.unwrap_or_else(|e| panic!("seed {seed}, round {round}: create {name}: {e}"));
                if group {
                    groups.push(name);
                } else {
                    schemas.push(name);
                }
            }
            let delay = rng.random_range(0..3u64);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            child.kill().expect("kill -9");
            child.wait().expect("reaped");
            if rng.random_bool(0.3) {
                tear_the_log(state.path(), &mut rng);
            }
        }
    }
}

/// Writes a torn frame right after the last record of the newest log (or into a new one), as a
/// kill during a write would leave it: a length, a checksum, and fewer payload bytes than the
/// length says. The log is preallocated with zeros, so its records end at the last non-zero byte.
fn tear_the_log(state: &Path, rng: &mut StdRng) {
    let newest = std::fs::read_dir(state)
        .expect("state dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let g: u64 = name
                .strip_prefix("snapshot-")?
                .strip_suffix(".json")?
                .parse()
                .ok()?;
            Some(g)
        })
        .max()
        .unwrap_or(0);
    let path = state.join(format!("wal-{newest}.log"));
    let end = std::fs::read(&path)
        .ok()
        .and_then(|bytes| bytes.iter().rposition(|b| *b != 0))
        .map_or(0, |last| last + 1);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("log opens");
    let mut torn = 200u32.to_le_bytes().to_vec();
    torn.extend_from_slice(&rng.random::<u32>().to_le_bytes());
    torn.extend((0..rng.random_range(0..150)).map(|_| rng.random::<u8>()));
    log.seek(SeekFrom::Start(end as u64)).expect("seeks");
    log.write_all(&torn).expect("torn frame written");
}

/// A change that cannot be saved is answered 503 ServiceUnavailable (which the SDKs retry) and
/// undone: neither the running emulator nor a restarted one shows it, and the next change that
/// can be saved is kept.
#[tokio::test]
async fn a_change_that_cannot_be_saved_is_refused_and_leaves_no_phantom() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("state");
    let emu = start_with(Arc::new(MemoryStore::new()), |c| {
        c.state_dir = Some(state_dir.clone())
    })
    .await;
    let c = clients(&emu);
    c.control
        .create_dataset_group()
        .name("kept")
        .send()
        .await
        .expect("saved and answered");
    // A file where the state directory was: every write fails (permissions would not stop root).
    std::fs::remove_dir_all(&state_dir).expect("removed");
    std::fs::write(&state_dir, b"not a directory").expect("written");
    let refused = raw_control(emu.addr(), "CreateDatasetGroup", r#"{"name": "lost"}"#).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("x-amzn-errortype"), Some("ServiceUnavailable"));
    assert!(
        refused.body.contains(&state_dir.display().to_string()),
        "names what it could not write: {}",
        refused.body
    );
    assert_eq!(
        code(
            c.control
                .create_schema()
                .name("lost")
                .schema(INTERACTIONS_SCHEMA)
                .send()
                .await
        ),
        "ServiceUnavailable"
    );
    // Reads still answer, and show nothing that was refused.
    assert_eq!(group_names(&c.control).await, ["kept"]);
    assert!(schema_names(&c.control).await.is_empty());
    // A retried create (what the SDK does after a 503) finds no half-made resource once the
    // directory is back.
    std::fs::remove_file(&state_dir).expect("the way is clear again");
    c.control
        .create_dataset_group()
        .name("lost")
        .send()
        .await
        .expect("created this time, not ResourceAlreadyExists");
    emu.shutdown().await.expect("stopped and saved");

    let emu = start_with(Arc::new(MemoryStore::new()), |c| {
        c.state_dir = Some(state_dir.clone())
    })
    .await;
    let c = clients(&emu);
    assert_eq!(group_names(&c.control).await, ["kept", "lost"]);
    assert!(schema_names(&c.control).await.is_empty());
    emu.shutdown().await.expect("stopped");
}

/// Concurrent changes share syncs (group commit) and every one of them is answered and kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_are_all_saved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let emu = start_with(Arc::new(MemoryStore::new()), |c| {
        c.state_dir = Some(dir.path().to_path_buf())
    })
    .await;
    let c = clients(&emu);
    let creates = (0..24).map(|i| {
        c.control
            .create_schema()
            .name(format!("s{i:02}"))
            .schema(INTERACTIONS_SCHEMA)
            .send()
    });
    for answer in futures::future::join_all(creates).await {
        answer.expect("created");
    }
    emu.shutdown().await.expect("stopped");
    let emu = start_with(Arc::new(MemoryStore::new()), |c| {
        c.state_dir = Some(dir.path().to_path_buf())
    })
    .await;
    let c = clients(&emu);
    let listed = c
        .control
        .list_schemas()
        .max_results(100)
        .send()
        .await
        .expect("listed");
    assert_eq!(listed.schemas().len(), 24);
    emu.shutdown().await.expect("stopped");
}
