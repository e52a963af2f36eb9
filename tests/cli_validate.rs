//! Black-box tests of `personalize-ops validate` and `personalize-ops schema`: exit codes, text and
//! JSON output, several files at once, missing files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_personalize-ops"))
        .args(args)
        // Settings come from the built-in defaults only, whatever the developer's environment says.
        .env_remove("PERSONALIZE_OPS_SETTINGS")
        .env("RUST_LOG", "off")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file written");
    path.to_string_lossy().into_owned()
}

#[test]
fn valid_files_exit_zero_with_a_summary() {
    let a = fixture("sample_config.json");
    let b = fixture("dataset-group-name-2.json");
    let out = run(&["validate", a.to_str().expect("utf-8"), b.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "2 file(s) checked: 2 valid, 0 invalid, 0 warning(s)\n"
    );
}

#[test]
fn warnings_go_to_stderr_and_do_not_fail() {
    let file = fixture("sample_config_wtags.json");
    let name = file.to_str().expect("utf-8");
    let out = run(&["validate", name]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "1 file(s) checked: 1 valid, 0 invalid, 1 warning(s)\n"
    );
    assert!(
        stderr(&out).contains(&format!(
            "{name}: warning: recommenders: recommenders need a Domain"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn errors_are_printed_per_file_with_paths_and_exit_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"datasetGroup": {"serviceConfig": {"name": "g"}},
            "solutions": [{"serviceConfig": {"name": "s", "recipeArn": "arn:aws:personalize:::recipe/aws-sims"},
                           "campaigns": [{"serviceConfig": {"name": "c", "minProvisionedTPS": 0}}]}],
            "foo": 1}"#,
    );
    let good = fixture("sample_config.json");
    let out = run(&["validate", &bad, good.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    // In file order: the campaign comes before the unknown key.
    assert!(
        lines[1].starts_with(&format!("{bad}: foo: key foo is not an allowed key")),
        "{text}"
    );
    assert_eq!(
        lines[0],
        format!(
            "{bad}: solutions[0].campaigns[0].serviceConfig.minProvisionedTPS: Invalid value for \
             parameter minProvisionedTPS, value: 0, valid min value: 1"
        )
    );
    assert_eq!(lines[2], "2 file(s) checked: 1 valid, 1 invalid, 0 warning(s)");
}

#[test]
fn json_syntax_errors_and_empty_files_are_reported_at_the_root() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = write(dir.path(), "broken.json", "{");
    let empty = write(dir.path(), "empty.json", "{}");
    let out = run(&["validate", &broken, &empty]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "{broken}: (root): Could not validate JSON: EOF while parsing"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("{empty}: (root): Configuration should not be empty")));
    assert!(text.contains(&format!(
        "{empty}: datasetGroup: A datasetGroup must be provided at path datasetGroup"
    )));
    assert!(text.ends_with("2 file(s) checked: 0 valid, 2 invalid, 0 warning(s)\n"));
}

#[test]
fn a_missing_file_is_reported_like_an_invalid_one() {
    let good = fixture("sample_config.json");
    let out = run(&[
        "validate",
        "/nonexistent/config.json",
        good.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("/nonexistent/config.json: (root): cannot read the file: "),
        "{text}"
    );
    assert!(text.ends_with("2 file(s) checked: 1 valid, 1 invalid, 0 warning(s)\n"));
}

#[test]
fn an_oversized_file_is_rejected_unread() {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = write(dir.path(), "big.json", &" ".repeat(1024 * 1024 + 1));
    let out = run(&["validate", &big]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("a parameter file may have at most 1048576 bytes"));
}

#[test]
fn json_output_has_one_object_per_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = write(dir.path(), "bad.json", r#"{"tags": {}}"#);
    let warned = fixture("sample_config_root_tags.json");
    let out = run(&[
        "validate",
        "--format",
        "json",
        &bad,
        warned.to_str().expect("utf-8"),
        "/nonexistent.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let reports: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0]["file"], bad.as_str());
    assert_eq!(reports[0]["valid"], false);
    assert_eq!(reports[0]["errors"][0]["path"], "tags");
    assert_eq!(
        reports[0]["errors"][1]["message"],
        "A datasetGroup must be provided at path datasetGroup"
    );
    assert_eq!(reports[0]["warnings"], serde_json::json!([]));
    assert_eq!(reports[1]["valid"], true);
    assert_eq!(reports[1]["errors"], serde_json::json!([]));
    assert_eq!(reports[1]["warnings"].as_array().map(Vec::len), Some(2));
    assert_eq!(reports[2]["valid"], false);
}

#[test]
fn validate_needs_a_file() {
    let out = run(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
}

#[test]
fn schema_prints_the_json_schema() {
    let out = run(&["schema"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let schema: Value = serde_json::from_str(&stdout(&out)).expect("the schema is JSON");
    assert_eq!(
        schema,
        personalize_ops::spec::json_schema::parameter_file_schema()
    );
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
}

/// Issue 13 item 6: the unauthenticated emulator is not exposed beyond loopback by accident.
#[test]
fn emulate_refuses_a_non_loopback_address_without_allow_remote() {
    let out = run(&["emulate", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--allow-remote"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "no URL printed: {}", stdout(&out));
}
